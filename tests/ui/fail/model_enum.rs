use rocket_alchemy::Model;

#[derive(Model)]
enum Status {
    Active,
    Archived,
}

fn main() {}
