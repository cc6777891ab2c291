// A real OpenID provider for plugpay's sign-in tests: panva/oidc-provider with
// its development login and consent pages (any login name and password pass).
// Usage: node provider.mjs --port 0 --clients '[{"client_id": …, "client_secret": …,
// "redirect_uris": […]}]'. Prints one JSON line {"issuer": …} once it listens.
import { parseArgs } from "node:util";
import Provider from "oidc-provider";

const { values } = parseArgs({
  options: { port: { type: "string", default: "0" }, clients: { type: "string" } },
});
const clients = JSON.parse(values.clients ?? "[]").map((client) => ({
  grant_types: ["authorization_code"],
  response_types: ["code"],
  token_endpoint_auth_method: "client_secret_basic",
  ...client,
}));

const server = (await import("node:http")).createServer();
await new Promise((resolve) => server.listen(Number(values.port), "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  pkce: { required: () => true },
  scopes: ["openid", "email", "profile"],
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["plugpay-test-peer"] },
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: `${id}@example.org`, email_verified: true, name: `Driver ${id}` }),
  }),
});
provider.on("server_error", (_ctx, error) => console.error("server_error", error));
server.on("request", provider.callback());
console.log(JSON.stringify({ issuer }));
