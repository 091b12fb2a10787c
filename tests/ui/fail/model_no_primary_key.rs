use rocket_alchemy::Model;

#[derive(Model)]
struct Setting {
    key: String,
    value: String,
}

fn main() {}
