use rocket_alchemy::Bind;

#[derive(Bind)]
#[bind(audit)]
struct Audit;

fn main() {}
