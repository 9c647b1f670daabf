// A portal-style Berth client, written as a tenant's portal team would write
// it: every request and response typed by `paths`, which openapi-typescript
// generates from the served /v1/openapi.json (run.sh writes ./berth.d.ts).
// If the document stops describing something the portal relies on, `tsc`
// fails on this file.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./berth.js";

type Schemas = components["schemas"];
export type Environment = Schemas["EnvironmentView"];
export type Component = Schemas["ComponentView"];
export type Revision = Schemas["RevisionView"];
export type Package = Schemas["PackageView"];
export type Deployment = Schemas["DeploymentView"];
export type Target = Schemas["TargetView"];
export type Problem = Schemas["ProblemView"];
export type Berth = Client<paths>;

/** A failed call: the HTTP status and the problem+json body the server sent. */
export class BerthError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(describeProblem(problem));
    this.name = "BerthError";
  }
}

/** What a portal shows for a failed call: the stable `code`, the `detail`, and each invalid field. */
export function describeProblem(problem: Problem): string {
  const fields = problem.errors.map((e) => `${e.field}: ${e.message}`);
  return [`${problem.code}: ${problem.detail}`, ...fields].join("\n  ");
}

export function berth(baseUrl: string, token: string): Berth {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}

export async function listEnvironments(api: Berth, cursor?: string): Promise<{ items: Environment[]; next_cursor?: string | null }> {
  const { data, error, response } = await api.GET("/v1/environments", { params: { query: { limit: 100, ...(cursor ? { cursor } : {}) } } });
  if (error) throw new BerthError(response.status, error);
  return data;
}

export async function createEnvironment(api: Berth, name: string, classification: Schemas["CreateEnvironment"]["classification"]): Promise<Environment> {
  const { data, error, response } = await api.POST("/v1/environments", { body: { name, classification, description: `${name} (portal)` } });
  if (error) throw new BerthError(response.status, error);
  return data;
}

/** Renames an environment, only if nobody changed it since `seen` was read (412 otherwise). */
export async function renameEnvironment(api: Berth, seen: Environment, name: string): Promise<Environment> {
  const { data, error, response } = await api.PATCH("/v1/environments/{id}", {
    params: { path: { id: seen.id } },
    headers: { "If-Match": seen.etag },
    body: { name },
  });
  if (error) throw new BerthError(response.status, error);
  return data;
}

/** The portal's "save" answer: either the saved environment or the problem to show, never an exception. */
export async function tryRenameEnvironment(api: Berth, seen: Environment, name: string): Promise<{ ok: true; environment: Environment } | { ok: false; status: number; code: string; detail: string; fields: string[] }> {
  const { data, error, response } = await api.PATCH("/v1/environments/{id}", {
    params: { path: { id: seen.id } },
    headers: { "If-Match": seen.etag },
    body: { name },
  });
  if (error) return { ok: false, status: response.status, code: error.code, detail: error.detail, fields: error.errors.map((e) => e.field) };
  return { ok: true, environment: data };
}

export async function createComponent(api: Berth, name: string, xml: string): Promise<Component> {
  const { data, error, response } = await api.POST("/v1/components", { body: { name, type: "process", content: base64(xml) } });
  if (error) throw new BerthError(response.status, error);
  return data;
}

/** A new revision of a component, only on top of the revision the user edited (If-Match its etag). */
export async function reviseComponent(api: Berth, component: Component, xml: string): Promise<Revision> {
  const { data, error, response } = await api.POST("/v1/components/{id}/revisions", {
    params: { path: { id: component.id } },
    headers: { "If-Match": component.etag },
    body: { content: base64(xml) },
  });
  if (error) throw new BerthError(response.status, error);
  return data;
}

export async function createPackage(api: Berth, componentId: string, notes: string): Promise<Package> {
  const { data, error, response } = await api.POST("/v1/packages", { body: { component_id: componentId, notes } });
  if (error) throw new BerthError(response.status, error);
  return data;
}

export async function createRuntime(api: Berth, name: string): Promise<Schemas["RuntimeView"]> {
  const { data, error, response } = await api.POST("/v1/runtimes", { body: { name } });
  if (error) throw new BerthError(response.status, error);
  return data;
}

export async function attachRuntime(api: Berth, environmentId: string, runtimeId: string): Promise<void> {
  const { error, response } = await api.PUT("/v1/environments/{id}/runtimes/{runtime_id}", { params: { path: { id: environmentId, runtime_id: runtimeId } } });
  if (error) throw new BerthError(response.status, error);
}

/**
 * Requests a deployment. The portal keeps `idempotencyKey` with the click that
 * asked for it, so a retried request (a timeout, a double click) returns the
 * first deployment instead of refusing a second one.
 */
export async function requestDeployment(api: Berth, packageId: string, environmentId: string, idempotencyKey: string): Promise<{ deployment: Deployment; replayed: boolean }> {
  const { data, error, response } = await api.POST("/v1/deployments", {
    headers: { "Idempotency-Key": idempotencyKey },
    body: { package_id: packageId, environment_id: environmentId, notes: "from the portal" },
  });
  if (error) throw new BerthError(response.status, error);
  return { deployment: data, replayed: response.headers.get("Idempotent-Replayed") === "true" };
}

export async function getDeployment(api: Berth, id: string): Promise<{ deployment: Deployment; targets: Target[] }> {
  const [one, targets] = await Promise.all([
    api.GET("/v1/deployments/{id}", { params: { path: { id } } }),
    api.GET("/v1/deployments/{id}/targets", { params: { path: { id } } }),
  ]);
  if (one.error) throw new BerthError(one.response.status, one.error);
  if (targets.error) throw new BerthError(targets.response.status, targets.error);
  return { deployment: one.data, targets: targets.data.items };
}

export async function decideApproval(api: Berth, deploymentId: string, decision: Schemas["CreateApproval"]["decision"], comment: string): Promise<Deployment> {
  const { data, error, response } = await api.POST("/v1/deployments/{id}/approvals", { params: { path: { id: deploymentId } }, body: { decision, comment } });
  if (error) throw new BerthError(response.status, error);
  return data;
}

export async function createApiKey(api: Berth, name: string, roles: Schemas["CreateApiKey"]["roles"]): Promise<string> {
  const { data, error, response } = await api.POST("/v1/api-keys", { body: { name, roles } });
  if (error) throw new BerthError(response.status, error);
  // Only the creating response carries the key.
  if (!data.key) throw new Error("POST /v1/api-keys answered without the key");
  return data.key;
}

function base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

// What must NOT compile: each line below is a mistake the generated types
// must catch. An unused `@ts-expect-error` is itself an error, so if the
// document stopped typing one of these, `tsc` fails here.
export async function mistakes(api: Berth): Promise<void> {
  // @ts-expect-error a role that does not exist (roles are an enum)
  await createApiKey(api, "ci", ["superuser"]);
  // @ts-expect-error an approval decision that does not exist
  await decideApproval(api, "0e7c2f4a-8b1d-4c6e-9f3a-2d5b7c9e1f40", "maybe", "");
  // @ts-expect-error an environment classification that does not exist
  await createEnvironment(api, "Staging", "staging");
  // @ts-expect-error `classification` is required to create an environment
  await api.POST("/v1/environments", { body: { name: "No classification" } });
  // @ts-expect-error a path the API does not have
  await api.GET("/v1/enviroments");
  // @ts-expect-error the path parameter is required
  await api.GET("/v1/deployments/{id}", {});
  // An unknown field (the server refuses unknown fields too), in a typed
  // value: openapi-fetch infers its init argument generically, which skips
  // TypeScript's excess-property check on a literal written inline.
  // @ts-expect-error `colour` is not a field of CreatePackage
  const body: Schemas["CreatePackage"] = { component_id: "5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31", colour: "blue" };
  await api.POST("/v1/packages", { body });
  const environment = await createEnvironment(api, "Typed", "test");
  // @ts-expect-error environments have no `owner`
  environment.owner;
  const { error } = await api.GET("/v1/environments");
  // @ts-expect-error a problem has `detail`, not `message`
  error?.message;
}
