use rocket_alchemy::Bind;

#[derive(Bind)]
#[bind("audit log")]
struct Audit;

fn main() {}
