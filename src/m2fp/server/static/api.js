// The two API calls the page makes, with every failure turned into an ApiError whose code
// is one of the contract's reasons (or a client-side one) so the page can localise it.

const ERROR_CODE = /^[a-z_]{1,40}$/;
const HEX_ID = /^[0-9a-f]{1,64}$/i;

/** A failed call: `code` selects the localised message, never the server's English text. */
export class ApiError extends Error {
  constructor(code, { retryAfter = null, requestId = null, strikes = null } = {}) {
    super(code);
    this.name = "ApiError";
    this.code = code;
    this.retryAfter = retryAfter;
    this.requestId = requestId;
    this.strikes = strikes; // {left, banSeconds} when the server counted a rejected upload
  }
}

function retryAfterSeconds(header) {
  if (!header) return null;
  if (/^\d+$/.test(header)) return Number(header);
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

async function send(url, init) {
  try {
    return await fetch(url, { credentials: "same-origin", cache: "no-store", ...init });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("network");
  }
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON (e.g. a proxy's HTML error page): fall back to a generic message
  }
  const code = body && ERROR_CODE.test(body.error) ? body.error : "bad_response";
  const requestId = body && HEX_ID.test(body.request_id) ? body.request_id : null;
  const counted = Number.isInteger(body?.strikes_left) && Number.isInteger(body?.ban_seconds);
  return new ApiError(code, {
    retryAfter: retryAfterSeconds(response.headers.get("Retry-After")),
    requestId,
    strikes: counted ? { left: body.strikes_left, banSeconds: body.ban_seconds } : null,
  });
}

async function json(response) {
  if (!response.ok) throw await failure(response);
  try {
    return await response.json();
  } catch {
    throw new ApiError("bad_response");
  }
}

/**
 * GET api/v1/classes: what the loaded model paints. `classes` is [{id, name, color: [r, g, b]}]
 * (its label set: CIHP for the multi-person model, LIP for the single-person one) and
 * `singlePerson` says whether it is the single-person model (no persons, one region per class).
 */
export async function fetchClasses() {
  const body = await json(await send("api/v1/classes", { headers: { Accept: "application/json" } }));
  if (!Array.isArray(body?.classes)) throw new ApiError("bad_response");
  return { classes: body.classes, singlePerson: body.task === "single-person" };
}

/**
 * GET api/v1/limits: `{maxUploadBytes, rate: [{amount, seconds}]}`, what the page states
 * before an upload (the server enforces them whatever the page says).
 */
export async function fetchLimits() {
  const body = await json(await send("api/v1/limits", { headers: { Accept: "application/json" } }));
  const rate = Array.isArray(body?.rate_limit) ? body.rate_limit : null;
  const valid = (n) => Number.isInteger(n) && n > 0;
  if (!valid(body?.max_upload_bytes) || !rate?.every((r) => valid(r.amount) && valid(r.seconds))) {
    throw new ApiError("bad_response");
  }
  return { maxUploadBytes: body.max_upload_bytes, rate };
}

/** GET api/v1/mask-rules: label sets, remap tables, mask groups, agnostic rules. */
export async function fetchMaskRules() {
  const response = await send("api/v1/mask-rules", { headers: { Accept: "application/json" } });
  const body = await json(response);
  if (typeof body?.groups !== "object" || typeof body?.remaps !== "object") {
    throw new ApiError("bad_response");
  }
  return body;
}

/**
 * POST api/v1/parse with the photo as multipart field `image`.
 *
 * The overlay is painted in the page from the label map, so the server's visualisation is
 * not requested (a smaller answer and less work on the server).
 */
export async function parsePhoto(file, signal) {
  const form = new FormData();
  form.append("image", file, file.name);
  const response = await send("api/v1/parse?visualize=false", {
    method: "POST",
    body: form,
    headers: { Accept: "application/json" },
    signal,
  });
  const body = await json(response);
  if (typeof body?.label_map_png !== "string" || !Array.isArray(body.persons)) {
    throw new ApiError("bad_response");
  }
  return body;
}
