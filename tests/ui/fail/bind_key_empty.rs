use rocket_alchemy::Bind;

#[derive(Bind)]
#[bind("")]
struct Audit;

fn main() {}
