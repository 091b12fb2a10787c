// `children` takes only a column that references the parents' model: a text column compiled
// and answered `[]` before (it ran `WHERE todo.text IN (<uuid>)`).
use rocket_alchemy::{DbSession, Model, Repository, RepositoryError};

#[derive(Model)]
struct List {
    id: uuid::Uuid,
    title: String,
}

#[derive(Model)]
struct Todo {
    id: uuid::Uuid,
    text: String,
    #[model(references = List)]
    list_id: uuid::Uuid,
}

async fn todos(session: &DbSession, lists: &[List]) -> Result<Vec<Vec<Todo>>, RepositoryError> {
    Repository::<List>::on(session)?.children(lists, Todo::TEXT).await
}

fn main() {
    let _ = todos;
}
