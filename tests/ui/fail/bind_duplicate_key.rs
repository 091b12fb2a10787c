use rocket_alchemy::Bind;

#[derive(Bind)]
#[bind("audit")]
#[bind("archive")]
struct Audit;

fn main() {}
