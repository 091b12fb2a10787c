use rocket_alchemy::Model;

#[derive(Model)]
struct Country {
    #[model(primary_key = "auto_increment")]
    code: String,
}

fn main() {}
