//! The hello-world Lambda the cold-init bench measures Berth's functions
//! against: `lambda_runtime` on tokio, echoing its event, nothing else.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move { Ok::<_, lambda_runtime::Error>(event.payload) })).await
}
