//! The call counter the bench and the IAM test rely on counts exactly the
//! requests made, against LocalStack. This file is its own test binary; its
//! two tests may share a process (`cargo test`), so each looks only at its
//! own table or service.

use aws_sdk_dynamodb::types::AttributeValue;
use berth_aws::bootstrap::ensure_table;
use berth_aws::calls::{AwsCall, mark, serving, since, start_recording};
use berth_aws::{AwsClients, ResourceNames, keys};

#[tokio::test]
async fn three_reads_and_one_write_are_counted_as_exactly_three_get_items_and_one_put_item_of_their_table() {
    berth_aws::testing::require_localstack();
    start_recording();
    let clients = AwsClients::from_env().await;
    let names = ResourceNames::unique("cc");
    ensure_table(&clients.dynamo, &names.table).await.expect("the table is created in LocalStack");
    let key = |sk: &str| [(keys::PK.to_string(), AttributeValue::S("TENANT#counter".into())), (keys::SK.to_string(), AttributeValue::S(sk.into()))];

    let from = mark();
    serving("api", async {
        clients.dynamo.put_item().table_name(&names.table).set_item(Some(key("A").into())).send().await.expect("a put");
        for sk in ["A", "B", "C"] {
            clients.dynamo.get_item().table_name(&names.table).set_key(Some(key(sk).into())).send().await.expect("a get");
        }
    })
    .await;
    let counted: Vec<AwsCall> = since(from).into_iter().filter(|c| c.service == "DynamoDB").collect();

    let call = |operation: &str| AwsCall {
        function: Some("api"),
        service: "DynamoDB".into(),
        operation: operation.into(),
        targets: vec![(String::new(), names.table.clone())],
        presigned: false,
    };
    assert_eq!(counted, [call("PutItem"), call("GetItem"), call("GetItem"), call("GetItem")]);
    assert!(since(mark()).iter().all(|c| c.service != "DynamoDB"), "nothing is counted after the last mark");
}

#[tokio::test]
async fn a_presigned_url_is_recorded_as_presigned_and_a_sent_request_is_not() {
    berth_aws::testing::require_localstack();
    start_recording();
    let clients = AwsClients::from_env().await;
    let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(60)).expect("a presigning config");
    let from = mark();
    let presign = clients.s3.get_object().bucket("cc-presign").key("tenants/x/object").presigned(config);
    berth_aws::calls::presigning(presign).await.expect("a presigned URL");
    let _ = clients.s3.head_bucket().bucket("cc-presign-missing").send().await;
    let counted: Vec<(String, bool)> = since(from).into_iter().filter(|c| c.service == "S3").map(|c| (c.operation, c.presigned)).collect();
    assert_eq!(counted, [("GetObject".to_string(), true), ("HeadBucket".to_string(), false)]);
}
