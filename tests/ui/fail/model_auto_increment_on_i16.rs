use rocket_alchemy::Model;

#[derive(Model)]
struct Level {
    #[model(primary_key = "auto_increment")]
    id: i16,
}

fn main() {}
