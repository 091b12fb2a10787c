use std::marker::PhantomData;

use rocket_alchemy::Bind;

#[derive(Bind)]
#[bind("audit")]
struct Audit<T>(PhantomData<T>);

fn main() {}
