// A follower built with Fedify, run by newsbot's tests on loopback.
//
// usage: node follower.mjs PORT HANDLE [rfc9421|draft-cavage-http-signatures-12]
// It serves the actor http://127.0.0.1:PORT/users/alice (WebFinger, actor,
// inbox; Fedify verifies every incoming signature and rejects bad ones),
// discovers HANDLE (acct:news@host) by WebFinger, follows it, and prints one
// JSON line per event on stdout: ready, followed (the Follow was sent),
// accept / create / update / delete (only after Fedify verified the
// request's signature and that the signer is the activity's actor). A line
// "unfollow" on stdin sends Undo{Follow}; "quit" exits.
import "./node20.mjs";
import http from "node:http";
import readline from "node:readline";
import {
  Accept, Create, Delete, Endpoints, Follow, MemoryKvStore, Person, Undo, Update,
  createFederation, generateCryptoKeyPair,
} from "@fedify/fedify";

const port = Number(process.argv[2]);
const handle = process.argv[3];
const firstKnock = process.argv[4] ?? "rfc9421";
const origin = `http://127.0.0.1:${port}`;
const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n");

const federation = createFederation({
  kv: new MemoryKvStore(),
  allowPrivateAddress: true,
  firstKnock,
});
const keys = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== "alice") return null;
    const pairs = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      publicKey: pairs[0].cryptographicKey,
      assertionMethods: pairs.map((pair) => pair.multikey),
    });
  })
  .setKeyPairsDispatcher(async (_ctx, identifier) => (identifier === "alice" ? [keys] : []));

async function noteOf(activity) {
  const object = await activity.getObject();
  return {
    object: object?.id?.href ?? null,
    type: object?.constructor?.name ?? null,
    content: object?.content?.toString() ?? null,
    url: object?.url?.href ?? null,
    published: object?.published?.toString() ?? null,
    updated: object?.updated?.toString() ?? null,
  };
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Accept, async (_ctx, accept) => {
    // The embedded Follow's id (getObject() would refetch a cross-origin object by its id).
    emit({ event: "accept", id: accept.id?.href, actor: accept.actorId?.href,
           follow: accept.objectId?.href ?? null });
  })
  .on(Create, async (_ctx, create) => {
    emit({ event: "create", id: create.id?.href, actor: create.actorId?.href,
           ...(await noteOf(create)) });
  })
  .on(Update, async (_ctx, update) => {
    emit({ event: "update", id: update.id?.href, actor: update.actorId?.href,
           ...(await noteOf(update)) });
  })
  .on(Delete, async (_ctx, del) => {
    emit({ event: "delete", id: del.id?.href, actor: del.actorId?.href,
           object: del.objectId?.href ?? null });
  })
  .onError((_ctx, error) => emit({ event: "error", message: String(error) }));

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  const request = new Request(new URL(req.url, origin), {
    method: req.method,
    headers: Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v]),
    body: ["GET", "HEAD"].includes(req.method) ? undefined : body,
  });
  const response = await federation.fetch(request, { contextData: undefined });
  if (req.method === "POST") {
    emit({ event: "inbox", status: response.status,
           scheme: req.headers["signature-input"] ? "rfc9421" : "cavage" });
  }
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
});
await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
emit({ event: "ready", actor: `${origin}/users/alice` });

const ctx = federation.createContext(new URL(origin), undefined);
const target = await ctx.lookupObject(handle);
if (target === null || target.inboxId === null) {
  emit({ event: "error", message: `cannot discover ${handle}` });
  process.exit(1);
}
emit({ event: "discovered", id: target.id.href, type: target.constructor.name,
       inbox: target.inboxId.href, name: target.preferredUsername?.toString() ?? null });
const follow = new Follow({
  id: new URL(`${origin}/users/alice#follows/1`),
  actor: ctx.getActorUri("alice"),
  object: target.id,
});
await ctx.sendActivity({ identifier: "alice" }, target, follow);
emit({ event: "followed", id: follow.id.href });

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line.trim() === "unfollow") {
    await ctx.sendActivity({ identifier: "alice" }, target, new Undo({
      id: new URL(`${origin}/users/alice#undo/1`),
      actor: ctx.getActorUri("alice"),
      object: follow,
    }));
    emit({ event: "unfollowed" });
  } else if (line.trim() === "quit") {
    break;
  }
}
server.close();
process.exit(0);
