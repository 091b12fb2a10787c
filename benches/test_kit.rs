//! The test kit's cost per test: setup (copy every bind's template, launch the app) and
//! teardown (drop the databases), on each backend, for the `authors` example (two binds).
//!
//! `cargo bench --bench test_kit` with `TEST_POSTGRES_URL`, `TEST_MYSQL_URL` (and
//! `TEST_PGBOUNCER_URL`) set, as `scripts/test.sh` sets them; `KIT_RUNS` (default 30) tests
//! per backend, after one that builds the template (reported apart).

#[path = "../examples/authors/app.rs"]
#[allow(dead_code, missing_docs)]
mod app;

use std::time::{Duration, Instant};

use rocket_alchemy::testing::{TestKit, TestTarget};

static KIT: TestKit = TestKit::new(app::app);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "mean {:6.1} ms  p50 {:6.1} ms  p95 {:6.1} ms",
        ms(mean),
        ms(p(0.5)),
        ms(p(0.95))
    )
}

fn main() {
    let runs: usize = std::env::var("KIT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    println!("test kit, authors example (2 binds), {runs} tests per backend");
    for target in TestTarget::ALL {
        rocket_alchemy::testing::block_on(async {
            let first = Instant::now();
            let Some(app) = KIT.start(target).await else {
                return;
            };
            let template = first.elapsed();
            drop(app);
            let (mut setup, mut teardown) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let started = Instant::now();
                let app = KIT.start(target).await.expect("configured");
                setup.push(started.elapsed());
                let status = app.get("/health").dispatch().await.status().code;
                assert_eq!(status, 200);
                let dropped = Instant::now();
                drop(app);
                teardown.push(dropped.elapsed());
            }
            println!(
                "{target:>9}: first test (builds the template) {:7.1} ms",
                ms(template)
            );
            println!("{target:>9}: setup    {}", summary(setup));
            println!("{target:>9}: teardown {}", summary(teardown));
        });
    }
}
