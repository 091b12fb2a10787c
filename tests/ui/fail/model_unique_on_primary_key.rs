use rocket_alchemy::Model;

#[derive(Model)]
struct Tag {
    #[model(primary_key, unique)]
    slug: String,
}

fn main() {}
