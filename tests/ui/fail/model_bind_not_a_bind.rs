use rocket_alchemy::Model;

struct Audit;

#[derive(Model)]
#[model(bind = Audit)]
struct LogLine {
    id: i64,
}

fn main() {}
