//! The Athena stand-in of `athena_stub.rs` as a program, for the Lambda
//! smoke test (`scripts/lambda_smoke.py`), whose functions run in their own
//! processes: moto's Athena describes no query's columns unless seeded query
//! by query, and checks no statement. It prints its endpoint, then serves
//! on 127.0.0.1 until it is stopped.

use silt_tests::athena_stub::AthenaStub;

#[tokio::main]
async fn main() {
    let stub = AthenaStub::start(|_, _| None, false).await;
    println!("{}", stub.endpoint);
    std::future::pending::<()>().await;
}
