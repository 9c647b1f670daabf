//! `berth-local serve | token | bootstrap | teardown`

use anyhow::{Context, Result, bail};
use berth_aws::app::settings_from_env;
use berth_aws::{AwsClients, ResourceNames};
use berth_domain::context::{Actor, PlatformCtx};
use berth_domain::page::PageRequest;
use berth_domain::values::{Name, Plan};
use berth_local::{LocalBerth, causes, local_auth_config, local_cors_origins, with_retries};
use berth_web::auth::{KeySource, claims_for, issue_hs256_shaped};
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
        /// Also run a demo agent (the berth-agent binary next to this one),
        /// attached to the demo tenant's "Test" environment.
        #[arg(long, env = "BERTH_DEMO_AGENT", default_value_t = false)]
        demo_agent: bool,
        /// The demo agent's state directory.
        #[arg(long, env = "BERTH_DEMO_AGENT_DIR", default_value = "localstack/.state/demo-agent")]
        demo_agent_dir: std::path::PathBuf,
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
    /// Delete every runtime job queue (and its dead-letter queue) named with
    /// the queue prefix: the API creates them per runtime, so deleting a stack
    /// leaves them behind. Against AWS, set the stack's prefix (`<stack>-`).
    Teardown {
        #[arg(long, env = "BERTH_QUEUE_PREFIX", default_value = "berth-")]
        queue_prefix: String,
        /// Required: this deletes queues, with the jobs in them.
        #[arg(long)]
        yes: bool,
    },
}

const DEMO_TENANT: &str = "Demo";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    berth_telemetry::init_tracing();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-local: error: {}", causes(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let auth = local_auth_config()?;
    // Dev tokens exist only with the HS256 secret; with a provider's keys, the provider issues them.
    let secret = match &auth.keys {
        KeySource::Hs256Secret(secret) => Some(secret.as_str()),
        _ => None,
    };
    match cli.command {
        Command::Teardown { queue_prefix, yes } => {
            if !yes {
                bail!("this deletes every queue named {queue_prefix}rt-*; run again with --yes");
            }
            let clients = AwsClients::from_env().await;
            let deleted = berth_aws::sqs::delete_runtime_queues(&clients.sqs, &queue_prefix).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            for name in &deleted {
                println!("deleted {name}");
            }
            println!("{} runtime queue(s) deleted", deleted.len());
        }
        Command::Token { tenant, roles, sub, ttl } => {
            let Some(secret) = secret else {
                bail!(
                    "berth-local token signs with the HS256 secret only; with BERTH_JWKS_URL or BERTH_JWT_PUBLIC_KEY set, get a token from that identity provider"
                )
            };
            let roles: Vec<&str> = roles.split(',').map(str::trim).filter(|r| !r.is_empty()).collect();
            let claims = claims_for(&auth.issuer, &auth.audience, &sub, tenant.map(|t| t.to_string()), &roles, Duration::from_secs(ttl));
            println!("{}", issue_hs256_shaped(secret, &auth.claims, &claims)?);
        }
        Command::Bootstrap => {
            let clients = AwsClients::from_env().await;
            let names = ResourceNames::from_env();
            let resources = with_retries("creating the table, bucket and queues", || berth_aws::bootstrap::ensure_resources(&clients, &names))
                .await
                .context("creating resources (is LocalStack up?)")?;
            println!("table={} bucket={} deployments_queue={}", names.table, names.bucket, resources.deployments_queue_url);
        }
        Command::Serve { bind, demo_agent, demo_agent_dir } => {
            let clients = AwsClients::from_env().await;
            let mut names = ResourceNames::from_env();
            // LocalStack takes any well-formed role ARN for the agents' queue credentials.
            names.queue_role_arn.get_or_insert_with(|| berth_aws::sts::LOCALSTACK_QUEUE_ROLE_ARN.to_string());
            let cors = local_cors_origins()?;
            let local = LocalBerth::start(&clients, &names, &auth, settings_from_env()).await.context("starting Berth (is LocalStack up?)")?.with_cors(cors);
            let platform = PlatformCtx { actor: Actor::system("berth-local"), request_id: "make-run".into(), client_request_id: None };
            let tenant = with_retries("creating the demo tenant", || async {
                let existing = local.berth.list_tenants(&platform, &PageRequest::first(100)).await?;
                anyhow::Ok(match existing.items.into_iter().find(|t| t.name.as_str() == DEMO_TENANT) {
                    Some(t) => t,
                    None => local.berth.create_tenant(&platform, Name::parse(DEMO_TENANT).map_err(anyhow::Error::msg)?, Plan::default()).await?,
                })
            })
            .await?;
            let sweep_every = std::env::var("BERTH_SWEEP_INTERVAL_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(15);
            let _workers = local.spawn_workers(clients.sqs.clone(), Duration::from_secs(sweep_every));
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let (addr, server) = local
                .serve(bind, async {
                    let _ = stopped.await;
                })
                .await?;
            if let Some(secret) = secret {
                let ttl = Duration::from_secs(12 * 3600);
                let admin = issue_hs256_shaped(
                    secret,
                    &auth.claims,
                    &claims_for(
                        &auth.issuer,
                        &auth.audience,
                        "admin@demo.example",
                        Some(tenant.id.to_string()),
                        &["admin", "developer", "deployer", "approver"],
                        ttl,
                    ),
                )?;
                let platform_token = issue_hs256_shaped(
                    secret,
                    &auth.claims,
                    &claims_for(&auth.issuer, &auth.audience, "operator@berth.example", None, &["platform_admin"], ttl),
                )?;
                println!(
                    "\nBerth is running on http://{addr}  (Ctrl-C to stop)\n\n\
                     JWT issuer:   {}\nJWT audience: {}\nHS256 secret: {secret}   (local runs only)\n\n\
                     Demo tenant:  {} ({})\n\nAdmin token for the demo tenant (12 h):\n  export TOKEN={admin}\n\n\
                     Platform-admin token (12 h):\n  export PLATFORM_TOKEN={platform_token}\n\n\
                     Try:\n  curl -s http://{addr}/v1/me -H \"Authorization: Bearer $TOKEN\"\n  \
                     curl -s -X POST http://{addr}/v1/environments -H \"Authorization: Bearer $TOKEN\" \\\n       \
                     -H 'Content-Type: application/json' -d '{{\"name\":\"Staging\",\"classification\":\"test\"}}'\n",
                    auth.issuer, auth.audience, tenant.name, tenant.id,
                );
            } else {
                println!(
                    "\nBerth is running on http://{addr}  (Ctrl-C to stop)\n\n\
                     Tokens are verified with {:?}: get them from your identity provider.\n\
                     JWT issuer:   {}\nJWT audience: {}\nClient id:    {}\n\
                     Tenant claim: {}\nRoles claim:  {}\n\n\
                     Demo tenant:  {} ({})  (put this id in the tenant claim of its users)\n\n\
                     Try:\n  curl -s http://{addr}/v1/me -H \"Authorization: Bearer $TOKEN\"\n",
                    auth.keys,
                    auth.issuer,
                    if auth.audience.is_empty() { "(not checked)" } else { &auth.audience },
                    auth.claims.client_id.as_deref().unwrap_or("(not checked)"),
                    auth.claims.tenant,
                    auth.claims.roles,
                    tenant.name,
                    tenant.id,
                );
            }
            if local.cors.is_empty() {
                println!("CORS: off (BERTH_CORS_ORIGINS is empty)\n");
            } else {
                println!("CORS: browsers may call from {} (BERTH_CORS_ORIGINS)\n", local.cors.iter().collect::<Vec<_>>().join(", "));
            }
            let mut agent = if demo_agent { Some(start_demo_agent(&local, &tenant, addr, &demo_agent_dir).await?) } else { None };
            tokio::signal::ctrl_c().await?;
            // The agent first: its long poll would hold the graceful shutdown open.
            if let Some(a) = agent.as_mut() {
                let _ = a.kill().await;
            }
            let _ = stop.send(());
            if tokio::time::timeout(Duration::from_secs(5), server).await.is_err() {
                println!("Some connections were still open after 5 s; stopping anyway.");
            }
            println!("Berth stopped.");
        }
    }
    Ok(())
}

/// Makes sure the demo tenant has a "Test" environment with a "demo-agent"
/// runtime attached, and runs the agent for it (killed when Berth stops).
async fn start_demo_agent(
    local: &LocalBerth,
    tenant: &berth_domain::tenant::Tenant,
    addr: SocketAddr,
    state_dir: &std::path::Path,
) -> Result<tokio::process::Child> {
    use berth_domain::context::TenantCtx;
    use berth_domain::environment::NewEnvironment;
    use berth_domain::runtime::RuntimeKind;
    use berth_domain::values::{Classification, Description, Role};
    let ctx = TenantCtx {
        tenant: tenant.id,
        actor: Actor::system("berth-local"),
        roles: vec![Role::Admin],
        request_id: "make-run".into(),
        client_request_id: None,
        tenant_suspended: false,
    };
    let env = with_retries("creating the demo environment", || async {
        let envs = local.berth.list_environments(&ctx, &PageRequest::first(100)).await?;
        anyhow::Ok(match envs.items.into_iter().find(|e| e.name.as_str() == "Test") {
            Some(e) => e,
            None => {
                let input = NewEnvironment {
                    name: Name::parse("Test").map_err(anyhow::Error::msg)?,
                    classification: Classification::Test,
                    enabled: true,
                    description: Description::default(),
                };
                local.berth.create_environment(&ctx, input).await?
            }
        })
    })
    .await?;
    let first_page = PageRequest::first(100);
    let runtimes = with_retries("listing the demo runtimes", || local.berth.list_runtimes(&ctx, &first_page)).await?;
    let existing = runtimes.items.into_iter().find(|r| r.name.as_str() == "demo-agent" && r.credential_hash.is_some());
    let (runtime_id, token) = match existing.filter(|_| state_dir.join("credential").exists()) {
        Some(r) => (r.id, None),
        None => {
            // A fresh runtime: whatever credential an earlier agent kept is void.
            let _ = std::fs::remove_dir_all(state_dir);
            let name = Name::parse("demo-agent").map_err(anyhow::Error::msg)?;
            let created = with_retries("creating the demo runtime", || local.berth.create_runtime(&ctx, name.clone(), RuntimeKind::OnPremise)).await?;
            (created.runtime.id, Some(created.registration_token.reveal()))
        }
    };
    with_retries("attaching the demo runtime", || local.berth.attach_runtime(&ctx, env.id, runtime_id)).await?;
    let binary = std::env::current_exe()?.with_file_name("berth-agent");
    if !binary.exists() {
        bail!("{} is missing: build it with `cargo build -p berth-agent` (make run does)", binary.display());
    }
    let mut cmd = tokio::process::Command::new(&binary);
    cmd.arg("run")
        .env("BERTH_API_URL", format!("http://{addr}"))
        .env("BERTH_AGENT_STATE_DIR", state_dir)
        .env("BERTH_AGENT_NAME", "demo-agent")
        .kill_on_drop(true);
    if let Some(t) = token {
        cmd.env("BERTH_REGISTRATION_TOKEN", t);
    }
    let child = cmd.spawn()?;
    println!("Demo agent: runtime {runtime_id}, attached to environment \"Test\" ({}), state in {}\n", env.id, state_dir.display());
    Ok(child)
}
