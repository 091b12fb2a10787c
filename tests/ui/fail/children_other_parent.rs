// A foreign key to another model is refused too: `Todo::OWNER_ID` references `User`, not
// `List`.
use rocket_alchemy::{DbSession, Model, RepositoryError, Service};

#[derive(Model)]
struct User {
    id: uuid::Uuid,
}

#[derive(Model)]
struct List {
    id: uuid::Uuid,
}

#[derive(Model)]
struct Todo {
    id: uuid::Uuid,
    #[model(references = List)]
    list_id: uuid::Uuid,
    #[model(references = User)]
    owner_id: uuid::Uuid,
}

async fn todos(session: &DbSession, lists: &[List]) -> Result<Vec<Vec<Todo>>, RepositoryError> {
    Service::<List>::on(session)?.children(lists, Todo::OWNER_ID).await
}

fn main() {
    let _ = todos;
}
