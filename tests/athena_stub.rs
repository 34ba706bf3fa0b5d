//! An Athena stand-in speaking Athena's JSON protocol on 127.0.0.1, for what
//! moto's Athena cannot show: a failed query, a repeated request token, the
//! columns of a query nobody seeded. It fails every statement that breaks
//! one of Athena's documented rules (`silt_aws::athena_rules`) or is of a
//! kind `silt_aws::athena_access` has no row for, so every test driving it
//! checks the statements the engine issues.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helper: failures are test failures"
)]

use crate::moto::Moto;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How the stand-in ends a query: `None` succeeds, `Some((reason,
/// retryable))` fails it. It is given the SQL and how many queries of the
/// same SQL were started before this one.
pub type Verdict = fn(&str, usize) -> Option<(&'static str, bool)>;

/// A running stand-in. Like Athena, it answers a `ClientRequestToken` it has
/// seen with the query it started for it, and starts nothing new. Every
/// query succeeds or fails as its verdict says and describes one `bigint`
/// column (one per test of a model's data-test query), and `_event_time` where the query has it (moto describes none
/// unless seeded query by query). Its one value
/// is 0 or, when numbered, the query's number (`q7` answers 7), so two
/// statements that share a query share an answer.
pub struct AthenaStub {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    started: Arc<Mutex<Vec<String>>>,
}

impl AthenaStub {
    /// Starts the stand-in on a free port, serving until the runtime ends.
    pub async fn start(verdict: Verdict, numbered: bool) -> AthenaStub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let queries = Arc::new(Mutex::new(Vec::<String>::new()));
        let tokens = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let started = queries.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (queries, tokens) = (queries.clone(), tokens.clone());
                tokio::spawn(serve(sock, queries, tokens, verdict, numbered));
            }
        });
        AthenaStub { endpoint, started }
    }

    /// The statements it started, in order.
    pub fn started(&self) -> Vec<String> {
        self.started.lock().unwrap().clone()
    }

    /// An Athena client of `moto`'s configuration that talks to the stand-in.
    pub async fn client(&self, moto: &Moto) -> aws_sdk_athena::Client {
        let conf = aws_sdk_athena::config::Builder::from(&moto.sdk_config().await)
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_athena::Client::from_conf(conf)
    }
}

/// Answers one connection's requests until it closes.
async fn serve(
    sock: tokio::net::TcpStream,
    queries: Arc<Mutex<Vec<String>>>,
    tokens: Arc<Mutex<HashMap<String, usize>>>,
    verdict: Verdict,
    numbered: bool,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut reader = BufReader::new(sock);
    loop {
        let mut target = String::new();
        let mut len = 0usize;
        let mut line = String::new();
        let mut request_line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if request_line.is_empty() {
                request_line = line.trim_end().to_string();
                continue;
            }
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if let Some(v) = l.strip_prefix("x-amz-target:") {
                target = v.trim().to_string();
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).await.unwrap();
        let mut req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        // The same operations in Athena's REST-JSON form, which newer SDKs
        // (botocore 1.44, what the golden-scenarios script runs on) send.
        let path = request_line.split(' ').nth(1).unwrap_or_default();
        if target.is_empty() {
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            target = match parts.as_slice() {
                ["query-executions"] => "amazonathena.startqueryexecution".into(),
                ["query-executions", id] => {
                    req = json!({"QueryExecutionId": id});
                    "amazonathena.getqueryexecution".into()
                }
                ["query-executions", id, "results"] => {
                    req = json!({"QueryExecutionId": id});
                    "amazonathena.getqueryresults".into()
                }
                _ => String::new(),
            };
        }
        let id_of = |req: &Value| -> usize {
            req["QueryExecutionId"].as_str().unwrap()[1..]
                .parse()
                .unwrap()
        };
        let resp = match target.as_str() {
            "amazonathena.startqueryexecution" => {
                let token = req["ClientRequestToken"].as_str().unwrap_or_default();
                let mut q = queries.lock().unwrap();
                let id = *tokens
                    .lock()
                    .unwrap()
                    .entry(token.to_string())
                    .or_insert_with(|| {
                        q.push(req["QueryString"].as_str().unwrap_or_default().to_string());
                        q.len() - 1
                    });
                json!({"QueryExecutionId": format!("q{id}")})
            }
            "amazonathena.getqueryexecution" => {
                let id = id_of(&req);
                let q = queries.lock().unwrap();
                let before = q[..id].iter().filter(|s| **s == q[id]).count();
                // A statement breaking a documented rule fails, as on Athena.
                // So does one of a kind whose access (`athena_access`) the
                // templates were not checked for.
                let broken = silt_aws::athena_rules::check(&q[id], Default::default())
                    .into_iter()
                    .next()
                    .map(|v| format!("{}: {}", v.rule, v.message))
                    .or_else(|| {
                        silt_aws::athena_access::statement(&q[id])
                            .is_none()
                            .then(|| "no access row for this kind of statement".to_string())
                    });
                let status = match broken
                    .as_deref()
                    .map(|b| (b, false))
                    .or(verdict(&q[id], before))
                {
                    Some((reason, retryable)) => {
                        json!({"State": "FAILED", "StateChangeReason": reason, "AthenaError": {"ErrorCategory": 2, "ErrorType": 1006, "Retryable": retryable}})
                    }
                    None => json!({"State": "SUCCEEDED"}),
                };
                json!({"QueryExecution": {"QueryExecutionId": format!("q{id}"), "Status": status, "Statistics": {"DataScannedInBytes": 1024, "EngineExecutionTimeInMillis": 5}}})
            }
            "amazonathena.getqueryresults" => {
                let id = id_of(&req);
                let value = if numbered { id } else { 0 };
                let sql = queries.lock().unwrap()[id].clone();
                // A model's data tests answer a column per test.
                let names: Vec<String> = match sql.matches(" AS \"_test_").count() {
                    0 => vec!["_col0".into()],
                    n => (0..n).map(|i| format!("_test_{i}")).collect(),
                };
                let mut columns: Vec<Value> = names
                    .iter()
                    .map(|n| json!({"Name": n, "Type": "bigint", "Precision": 19, "Scale": 0}))
                    .collect();
                // A query describing a model that keeps the raw zone's event
                // time: Athena reports its type, as the engine needs it.
                if sql.contains("\"_event_time\"") {
                    columns.push(json!({"Name": "_event_time", "Type": "timestamp", "Precision": 3, "Scale": 0}));
                }
                let header: Vec<Value> = names.iter().map(|n| json!({"VarCharValue": n})).collect();
                let row: Vec<Value> = names
                    .iter()
                    .map(|_| json!({"VarCharValue": value.to_string()}))
                    .collect();
                json!({"ResultSet": {
                    "Rows": [{"Data": header}, {"Data": row}],
                    "ResultSetMetadata": {"ColumnInfo": columns}
                }})
            }
            _ => json!({}),
        };
        let text = resp.to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        let sock = reader.get_mut();
        if sock.write_all(head.as_bytes()).await.is_err()
            || sock.write_all(text.as_bytes()).await.is_err()
        {
            return;
        }
    }
}
