use rocket_alchemy::Model;

#[derive(Model)]
struct Profile {
    id: i64,
    nickname: Option<Option<String>>,
}

fn main() {}
