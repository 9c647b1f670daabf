// Runs the portal client for real against a Berth (run.sh starts one):
//   BERTH_URL=http://127.0.0.1:8080 BERTH_TOKEN=... node dist/smoke.js
// Every step asserts what a portal user would see; the first mismatch exits 1.
import {
  attachRuntime,
  berth,
  BerthError,
  createComponent,
  createEnvironment,
  createPackage,
  createRuntime,
  getDeployment,
  listEnvironments,
  renameEnvironment,
  requestDeployment,
  reviseComponent,
  tryRenameEnvironment,
} from "./client.js";

// The portal itself runs in a browser; only this runner needs Node's process.
declare const process: { env: Record<string, string | undefined>; exit(code: number): never };

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`portal smoke: ${what}`);
  console.log(`portal smoke: ok - ${what}`);
}

async function refused(call: Promise<unknown>): Promise<BerthError> {
  try {
    await call;
  } catch (e) {
    if (e instanceof BerthError) return e;
    throw e;
  }
  throw new Error("portal smoke: the call was expected to fail and succeeded");
}

async function main(): Promise<void> {
  const url = process.env["BERTH_URL"];
  const token = process.env["BERTH_TOKEN"];
  if (!url || !token) throw new Error("BERTH_URL and BERTH_TOKEN are required");
  const api = berth(url, token);
  const stamp = Date.now().toString(36);

  const created = await createEnvironment(api, `Portal ${stamp}`, "test");
  check(created.name === `Portal ${stamp}` && created.classification === "test" && created.enabled, "a created environment comes back as sent, enabled");
  const listed = await listEnvironments(api);
  check(
    listed.items.some((e) => e.id === created.id && e.etag === created.etag),
    "the environment list holds the created environment with the same etag",
  );

  const duplicate = await refused(createEnvironment(api, `Portal ${stamp}`, "test"));
  check(duplicate.status === 409 && duplicate.problem.code === "name_exists", `a second environment of that name is refused 409 name_exists (${duplicate.problem.code})`);
  check(duplicate.problem.detail.length > 0 && Array.isArray(duplicate.problem.errors), "the problem carries a detail and an errors list");

  const renamed = await renameEnvironment(api, created, `Portal ${stamp} renamed`);
  check(renamed.name === `Portal ${stamp} renamed` && renamed.etag !== created.etag, "a PATCH with the current etag renames and changes the etag");
  const stale = await tryRenameEnvironment(api, created, `Portal ${stamp} stale`);
  check(
    !stale.ok && stale.status === 412 && stale.code === "precondition_failed",
    `a PATCH with the old etag is refused 412 precondition_failed (${stale.ok ? "saved" : stale.code})`,
  );

  const invalid = await refused(createEnvironment(api, "", "test"));
  check(
    invalid.status === 422 && invalid.problem.errors.some((e) => e.field === "name"),
    `an empty name is refused 422 naming the field (${invalid.problem.errors.map((e) => e.field).join(",")})`,
  );

  const component = await createComponent(api, `Orders ${stamp}`, `<process name="orders-${stamp}"/>`);
  const revision = await reviseComponent(api, component, `<process name="orders-${stamp}" version="2"/>`);
  check(revision.revision === component.revision + 1, "a revision on top of the current etag is the next revision");
  const pkg = await createPackage(api, component.id, "portal smoke");
  check(pkg.component_id === component.id && pkg.version === "1", "the first package of the component is version 1");

  const runtime = await createRuntime(api, `portal-${stamp}`);
  await attachRuntime(api, created.id, runtime.id);
  const key = `portal-${stamp}`;
  const first = await requestDeployment(api, pkg.id, created.id, key);
  const again = await requestDeployment(api, pkg.id, created.id, key);
  check(!first.replayed && again.replayed && again.deployment.id === first.deployment.id, "the same Idempotency-Key returns the first deployment, marked replayed");
  const read = await getDeployment(api, first.deployment.id);
  check(read.deployment.package_id === pkg.id && read.deployment.environment_id === created.id, "the deployment reads back with its package and environment");
  check(read.targets.every((t) => t.runtime_id === runtime.id), `its targets are on the attached runtime (${read.targets.length} so far)`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
