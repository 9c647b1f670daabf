//! `berth-local serve | token | bootstrap`

use anyhow::{bail, Context, Result};
use berth_aws::app::settings_from_env;
use berth_aws::{AwsClients, ResourceNames};
use berth_domain::context::{Actor, PlatformCtx};
use berth_domain::page::PageRequest;
use berth_domain::values::{Name, Plan};
use berth_local::{local_auth_config, LocalBerth};
use berth_web::auth::{claims_for, issue_hs256, KeySource};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "berth-local", about = "Run Berth on one machine against LocalStack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the resources, a demo tenant, and serve every API.
    Serve {
        #[arg(long, env = "BERTH_BIND", default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
    },
    /// Print a signed dev token (HS256, the local secret).
    Token {
        /// Tenant id; omit for a platform_admin token.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
        /// Comma-separated roles.
        #[arg(long, default_value = "admin")]
        roles: String,
        #[arg(long, default_value = "dev@example.com")]
        sub: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Create the table, bucket and queues, then exit.
    Bootstrap,
}

const DEMO_TENANT: &str = "Demo";

#[tokio::main]
async fn main() -> Result<()> {
    berth_web::telemetry::init_tracing();
    let cli = Cli::parse();
    let auth = local_auth_config();
    let KeySource::Hs256Secret(secret) = &auth.keys else { bail!("the local runner signs with HS256 only") };
    match cli.command {
        Command::Token { tenant, roles, sub, ttl } => {
            let roles: Vec<&str> = roles.split(',').map(str::trim).filter(|r| !r.is_empty()).collect();
            let claims = claims_for(&auth.issuer, &auth.audience, &sub, tenant.map(|t| t.to_string()), &roles, Duration::from_secs(ttl));
            println!("{}", issue_hs256(secret, &claims)?);
        }
        Command::Bootstrap => {
            let clients = AwsClients::from_env().await;
            let names = ResourceNames::from_env();
            let resources = berth_aws::bootstrap::ensure_resources(&clients, &names).await.context("creating resources (is LocalStack up?)")?;
            println!("table={} bucket={} deployments_queue={}", names.table, names.bucket, resources.deployments_queue_url);
        }
        Command::Serve { bind } => {
            let clients = AwsClients::from_env().await;
            let names = ResourceNames::from_env();
            let local = LocalBerth::start(&clients, &names, &auth, settings_from_env()).await.context("starting Berth (is LocalStack up?)")?;
            let platform = PlatformCtx { actor: Actor::system("berth-local"), request_id: "make-run".into() };
            let existing = local.berth.list_tenants(&platform, &PageRequest::first(100)).await?;
            let tenant = match existing.items.into_iter().find(|t| t.name.as_str() == DEMO_TENANT) {
                Some(t) => t,
                None => local.berth.create_tenant(&platform, Name::parse(DEMO_TENANT).map_err(anyhow::Error::msg)?, Plan::default()).await?,
            };
            let sweep_every = std::env::var("BERTH_SWEEP_INTERVAL_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(15);
            let _workers = local.spawn_workers(clients.sqs.clone(), Duration::from_secs(sweep_every));
            let (addr, server) = local.serve(bind, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            let ttl = Duration::from_secs(12 * 3600);
            let admin = issue_hs256(secret, &claims_for(&auth.issuer, &auth.audience, "admin@demo.example", Some(tenant.id.to_string()), &["admin", "developer", "deployer", "approver"], ttl))?;
            let platform_token = issue_hs256(secret, &claims_for(&auth.issuer, &auth.audience, "operator@berth.example", None, &["platform_admin"], ttl))?;
            println!(
                "\nBerth is running on http://{addr}  (Ctrl-C to stop)\n\n\
                 JWT issuer:   {}\nJWT audience: {}\nHS256 secret: {secret}   (local runs only)\n\n\
                 Demo tenant:  {} ({})\n\nAdmin token for the demo tenant (12 h):\n  export TOKEN={admin}\n\n\
                 Platform-admin token (12 h):\n  export PLATFORM_TOKEN={platform_token}\n\n\
                 Try:\n  curl -s http://{addr}/v1/me -H \"Authorization: Bearer $TOKEN\"\n  \
                 curl -s -X POST http://{addr}/v1/environments -H \"Authorization: Bearer $TOKEN\" \\\n       \
                 -H 'Content-Type: application/json' -d '{{\"name\":\"Test\",\"classification\":\"test\"}}'\n",
                auth.issuer, auth.audience, tenant.name, tenant.id,
            );
            server.await??;
            println!("Berth stopped.");
        }
    }
    Ok(())
}
