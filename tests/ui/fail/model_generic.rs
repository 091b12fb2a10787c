use rocket_alchemy::Model;

#[derive(Model)]
struct Wrapper<T> {
    id: i64,
    inner: T,
}

fn main() {}
