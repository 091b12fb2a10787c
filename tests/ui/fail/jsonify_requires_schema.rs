use rocket_alchemy::{Jsonify, Model};

#[derive(Model, serde::Serialize)]
struct Secret {
    id: i64,
    password_hash: String,
}

// A model is not a response schema: it cannot be sent as JSON without one.
fn leak(secret: Secret) -> Jsonify<Secret> {
    Jsonify::ok(secret)
}

fn main() {}
