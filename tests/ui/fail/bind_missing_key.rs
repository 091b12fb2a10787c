use rocket_alchemy::Bind;

#[derive(Bind)]
struct Audit;

fn main() {}
