// The ArtStore console: hash-routed views built with DOM calls (never innerHTML with data).
import {
  api, accessToken, ApiError, completeSignIn, loadConfig, resume, serviceBase, signIn, signOut, tokens,
} from "./api.js";

const $ = (sel) => document.querySelector(sel);
const view = () => $("#view");

/** h("tag", {attrs, on*: handlers}, ...children) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function showError(err) {
  const box = $("#error");
  if (!err) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  box.hidden = false;
}

function render(title, ...content) {
  document.title = `${title} · ArtStore console`;
  view().replaceChildren(h("h1", {}, title), ...content);
}

async function guarded(fn) {
  try {
    showError(null);
    return await fn();
  } catch (e) {
    showError(e);
    if (e instanceof ApiError && e.status === 401 && !tokens()) showSignedOut();
    return undefined;
  }
}

const bytes = (n) => {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let v = Number(n);
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
};
const when = (s) => (s ? new Date(s).toLocaleString() : "—");

function table(columns, rows, { caption, label } = {}) {
  return h("div", { class: "tablewrap", role: "region", "aria-label": label || caption || "table", tabindex: 0 },
    h("table", {},
      caption ? h("caption", { class: "muted" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.head)))),
      h("tbody", {}, rows.length
        ? rows.map((r) => h("tr", {}, columns.map((c) => h("td", {}, c.cell(r)))))
        : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "Nothing here.")))));
}

function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", {}, h("label", { for: id }, label), input);
}

function confirmDialog(message, confirmLabel = "Confirm") {
  return new Promise((resolve) => {
    const dlg = h("dialog", { "aria-label": "Confirm" },
      h("p", {}, message),
      h("div", { class: "row" },
        h("button", { type: "button", class: "danger", onclick: () => dlg.close("yes") }, confirmLabel),
        h("button", { type: "button", class: "secondary", onclick: () => dlg.close("no") }, "Cancel")));
    dlg.addEventListener("close", () => { dlg.remove(); resolve(dlg.returnValue === "yes"); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "mono", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

// ---------------------------------------------------------------- files: search
const search = { filters: {}, sort_by: "uploaded_at", sort_order: "desc", offset: 0, limit: 25 };

function parsePairs(text) {
  const out = {};
  for (const line of text.split(/\n|,/)) {
    const t = line.trim();
    if (!t) continue;
    const i = t.indexOf("=");
    if (i < 1) throw new ApiError(`metadata filter "${t}" is not key=value`);
    out[t.slice(0, i).trim()] = t.slice(i + 1).trim();
  }
  return out;
}

function toIso(dateValue, endOfDay) {
  if (!dateValue) return undefined;
  return new Date(`${dateValue}T${endOfDay ? "23:59:59.999" : "00:00:00"}`).toISOString();
}

async function filesView() {
  const inp = (name, type = "text", extra = {}) => h("input", { name, type, ...extra });
  const f = search.filters;
  const form = h("form", { class: "grid", role: "search", "aria-label": "Search files" },
    field("Full text", inp("query", "search", { value: f.query || "" })),
    field("File name contains", inp("filename", "text", { value: f.filename || "" })),
    field("Tags (comma-separated, all required)", inp("tags", "text", { value: (f.tags || []).join(", ") })),
    field("Metadata (key=value, comma-separated)", inp("metadata", "text",
      { value: Object.entries(f.metadata || {}).map(([k, v]) => `${k}=${v}`).join(", ") })),
    field("Content type", inp("content_type", "text", { value: f.content_type || "", placeholder: "image/png" })),
    field("Extension", inp("file_extension", "text", { value: f.file_extension || "", placeholder: "pdf" })),
    field("Min size (bytes)", inp("min_size", "number", { min: 0, value: f.min_size ?? "" })),
    field("Max size (bytes)", inp("max_size", "number", { min: 0, value: f.max_size ?? "" })),
    field("Uploaded from", inp("after", "date", { value: f.after || "" })),
    field("Uploaded until", inp("before", "date", { value: f.before || "" })),
    field("Uploaded by", inp("uploaded_by", "text", { value: f.uploaded_by || "" })),
    field("Retention", h("select", { name: "retention_policy" },
      ["", "temporary", "permanent"].map((v) => h("option", { value: v, selected: f.retention_policy === v }, v || "any")))),
    field("Status", h("select", { name: "status" },
      ["active", "expired", "deleted"].map((v) => h("option", { value: v, selected: (f.status || "active") === v }, v)))),
    h("div", {}, h("button", { type: "submit" }, "Search")));
  const results = h("div", { id: "results", "aria-live": "polite" });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    guarded(async () => {
      const d = new FormData(form);
      const s = (k) => String(d.get(k) || "").trim();
      search.filters = {
        query: s("query"), filename: s("filename"), content_type: s("content_type"),
        file_extension: s("file_extension"), uploaded_by: s("uploaded_by"),
        retention_policy: s("retention_policy"), status: s("status") || "active",
        tags: s("tags") ? s("tags").split(",").map((t) => t.trim()).filter(Boolean) : [],
        metadata: parsePairs(s("metadata")),
        min_size: s("min_size") === "" ? undefined : Number(s("min_size")),
        max_size: s("max_size") === "" ? undefined : Number(s("max_size")),
        after: s("after"), before: s("before"),
      };
      search.offset = 0;
      if (search.filters.query) search.sort_by = "relevance";
      else if (search.sort_by === "relevance") search.sort_by = "uploaded_at";
      await runSearch(results);
    });
  });
  render("Files", form, results);
  await guarded(() => runSearch(results));
}

async function runSearch(results) {
  const f = search.filters;
  const body = {
    status: f.status || "active", sort_by: search.sort_by, sort_order: search.sort_order,
    limit: search.limit, offset: search.offset,
  };
  for (const k of ["query", "filename", "content_type", "file_extension", "uploaded_by", "retention_policy"]) {
    if (f[k]) body[k] = f[k];
  }
  if (f.tags?.length) body.tags = f.tags;
  if (f.metadata && Object.keys(f.metadata).length) body.metadata = f.metadata;
  if (f.min_size !== undefined) body.min_size = f.min_size;
  if (f.max_size !== undefined) body.max_size = f.max_size;
  if (f.after) body.uploaded_after = toIso(f.after, false);
  if (f.before) body.uploaded_before = toIso(f.before, true);
  const page = await api("query", "POST", "/api/v1/search", { json: body });
  const sortHead = (label, key) => {
    const active = search.sort_by === key;
    const dir = active ? (search.sort_order === "asc" ? "ascending" : "descending") : "none";
    return h("button", {
      type: "button", "aria-label": `Sort by ${label}`, "data-sort": key,
      onclick: () => guarded(async () => {
        search.sort_order = active && search.sort_order === "desc" ? "asc" : "desc";
        search.sort_by = key;
        search.offset = 0;
        await runSearch(results);
      }),
    }, `${label}${active ? (dir === "ascending" ? " ▲" : " ▼") : ""}`);
  };
  const cols = [
    { head: sortHead("Name", "original_filename"),
      cell: (r) => h("a", { href: `#/file/${r.file_id}` }, r.original_filename) },
    { head: sortHead("Size", "size"), cell: (r) => bytes(r.size) },
    { head: "Type", cell: (r) => r.content_type },
    { head: "Tags", cell: (r) => (r.tags || []).join(", ") },
    { head: sortHead("Uploaded", "uploaded_at"), cell: (r) => when(r.uploaded_at) },
    { head: "By", cell: (r) => r.uploaded_by },
    { head: "Retention", cell: (r) => r.retention_policy },
  ];
  const first = page.total ? page.offset + 1 : 0;
  const last = page.offset + page.items.length;
  results.replaceChildren(
    h("p", { class: "muted" }, `${first}–${last} of ${page.total}`),
    table(cols, page.items, { label: "Search results" }),
    h("div", { class: "row" },
      h("button", { type: "button", class: "secondary", disabled: page.offset === 0,
        onclick: () => guarded(async () => { search.offset = Math.max(0, search.offset - search.limit); await runSearch(results); }) },
      "Previous page"),
      h("button", { type: "button", class: "secondary", disabled: !page.has_more,
        onclick: () => guarded(async () => { search.offset += search.limit; await runSearch(results); }) },
      "Next page")));
}

// ---------------------------------------------------------------- files: detail
// ``known``: the file's metadata as a change just answered it (finalize, edit): the query
// module's metadata cache may still hold the answer from before for a few seconds.
async function fileView(id, known = null) {
  const g = generation;
  render("File");
  const file = known || await api("query", "GET", `/api/v1/files/${encodeURIComponent(id)}`);
  const props = [
    ["Name", file.original_filename], ["File id", h("code", {}, file.file_id)], ["Size", `${bytes(file.size)} (${file.size} bytes)`],
    ["Content type", file.content_type], ["Checksum (SHA-256)", h("code", { id: "checksum" }, file.checksum)],
    ["Status", file.status], ["Retention", file.retention_policy + (file.expires_at ? ` (expires ${when(file.expires_at)})` : "")],
    ["Uploaded", `${when(file.uploaded_at)} by ${file.uploaded_by}`], ["Updated", `${when(file.updated_at)} (version ${file.version})`],
    ["Finalized", file.finalized_at ? `${when(file.finalized_at)} by ${file.finalized_by}` : "—"],
    ["Description", file.description || "—"], ["Tags", (file.tags || []).join(", ") || "—"],
  ];
  const dl = h("dl", { class: "props" }, props.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const meta = table([{ head: "Key", cell: (r) => r[0] }, { head: "Value", cell: (r) => r[1] }],
    Object.entries(file.metadata || {}), { label: "Metadata" });
  const copies = table([
    { head: "Storage element", cell: (c) => c.storage_element_id },
    { head: "State", cell: (c) => c.status },
  ], file.copies || [], { label: "Copies" });
  const preview = h("div", { id: "preview" });
  const linkOut = h("div", { id: "link", "aria-live": "polite" });
  const editBox = h("div", { id: "edit", hidden: true });
  const expiry = h("select", { id: "link-expiry" },
    [["3600", "1 hour"], ["86400", "1 day"], ["604800", "7 days"]].map(([v, t]) => h("option", { value: v }, t)));
  const actions = h("div", { class: "row" },
    h("button", { type: "button", onclick: () => guarded(() => download(file)) }, "Download"),
    field("Link expires in", expiry),
    h("button", { type: "button", onclick: () => guarded(async () => {
      const link = await api("query", "POST", `/api/v1/files/${file.file_id}/link`, { json: { expires_in: Number(expiry.value) } });
      const status = h("span", { role: "status" });
      linkOut.replaceChildren(h("p", {},
        h("a", { href: link.url, id: "signed-link", rel: "noreferrer" }, link.url), " ",
        h("span", { class: "muted" }, `expires ${when(link.expires_at)}`), " ",
        h("button", { type: "button", class: "secondary", onclick: async () => {
          status.textContent = (await copyText(link.url)) ? "Copied." : "Copy failed: select the link.";
        } }, "Copy link"), " ", status));
    }) }, "Create signed link"),
    file.retention_policy === "temporary" && file.status === "active"
      ? h("button", { type: "button", class: "secondary", onclick: () => guarded(async () => {
        if (await confirmDialog(`Make ${file.original_filename} permanent?`, "Finalize")) {
          const done = await api("ingester", "POST", `/api/v1/files/${file.file_id}/finalize`);
          await fileView(id, done);
        }
      }) }, "Finalize") : null,
    file.status === "active" ? h("button", { type: "button", class: "secondary", "aria-expanded": "false",
      "aria-controls": "edit", onclick: (e) => toggleEdit(e.currentTarget, editBox, file) }, "Edit") : null,
    file.status === "active" ? h("button", { type: "button", class: "danger", onclick: () => guarded(async () => {
      if (await confirmDialog(`Delete ${file.original_filename}? Every copy goes.`, "Delete")) {
        await api("admin", "DELETE", `/api/v1/admin/files/${file.file_id}`);
        location.hash = "#/files";
      }
    }) }, "Delete") : null);
  const history = h("div", { id: "history" }, h("p", { class: "muted" }, "Loading history…"));
  if (g !== generation) return;
  render(file.original_filename, preview, dl, actions, editBox, linkOut,
    h("h2", {}, "Metadata"), meta, h("h2", {}, "Copies"), copies, h("h2", {}, "History"), history);
  if ((file.previews || []).length) loadPreview(file, preview);
  try {
    const audit = await api("admin", "GET", "/api/v1/audit", { query: { target_id: file.file_id, limit: 50 } });
    history.replaceChildren(table([
      { head: "When", cell: (e) => when(e.at) }, { head: "Who", cell: (e) => e.actor },
      { head: "What", cell: (e) => e.action }, { head: "Outcome", cell: (e) => e.outcome },
    ], audit.items, { label: "History" }));
  } catch (e) {
    history.replaceChildren(h("p", { class: "muted" },
      `Uploaded ${when(file.uploaded_at)}; version ${file.version} since ${when(file.updated_at)}. (Audit history: ${e.message})`));
  }
}

// ---------------------------------------------------------------- files: edit
// PATCH /api/v1/files/{id} on the query module, which changes every copy (docs/query.md).
// Only the fields that changed are sent: a field left alone keeps its value as stored.

function parseMetadataLines(text) {
  const out = {};
  for (const [n, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    const i = line.indexOf("=");
    if (i < 1) throw new ApiError(`metadata line ${n + 1} is not key=value`);
    const key = line.slice(0, i).trim();
    if (Object.hasOwn(out, key)) throw new ApiError(`metadata key "${key}" is given twice`);
    out[key] = line.slice(i + 1);
  }
  return out;
}

const sameList = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
const sameMap = (a, b) => sameList(Object.keys(a).sort(), Object.keys(b).sort())
  && Object.keys(a).every((k) => a[k] === b[k]);

function toggleEdit(button, box, file) {
  const open = box.hidden;
  button.setAttribute("aria-expanded", String(open));
  if (!open) { box.hidden = true; box.replaceChildren(); return; }
  const tags0 = file.tags || [];
  const meta0 = file.metadata || {};
  const description = h("textarea", { name: "description", rows: 3, class: "wide" });
  description.value = file.description || "";
  const tags = h("textarea", { name: "tags", rows: 3 });
  tags.value = tags0.join("\n");
  const metadata = h("textarea", { name: "metadata", rows: 4, class: "mono" });
  metadata.value = Object.entries(meta0).map(([k, v]) => `${k}=${v}`).join("\n");
  // A key with "=" or a value with a line break has no key=value line: leave them alone.
  const lined = Object.entries(meta0).every(([k, v]) => !k.includes("=") && !/[\r\n]/.test(v));
  if (!lined) metadata.readOnly = true;
  const status = h("p", { role: "status", class: "muted" });
  const form = h("form", { class: "grid", "aria-label": "Edit file" },
    h("div", { class: "wide" }, field("Description", description)),
    field("Tags (one per line)", tags),
    field("Metadata (key=value, one per line)", metadata),
    h("div", { class: "row wide" },
      h("button", { type: "submit" }, "Save"),
      h("button", { type: "button", class: "secondary", onclick: () => toggleEdit(button, box, file) }, "Cancel")),
    status);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    guarded(async () => {
      status.textContent = "";
      const changes = {};
      if (description.value !== (file.description || "")) changes.description = description.value;
      const newTags = tags.value.split("\n").map((t) => t.trim()).filter(Boolean);
      if (!sameList(newTags, tags0)) changes.tags = newTags;
      if (lined) {
        const newMeta = parseMetadataLines(metadata.value);
        if (!sameMap(newMeta, meta0)) changes.metadata = newMeta;
      }
      if (!Object.keys(changes).length) { status.textContent = "Nothing changed."; return; }
      status.textContent = "Saving…";
      let saved;
      try {
        saved = await api("query", "PATCH", `/api/v1/files/${file.file_id}`, { json: changes });
      } catch (err) {
        // 502: some copies changed, others did not (named in the message); saving again
        // is safe (it sets the same values).
        status.textContent = err instanceof ApiError && Array.isArray(err.details?.failed)
          ? `Not saved on: ${err.details.failed.map((f) => `${f.storage_element_id} (${f.message})`).join("; ")}.`
          : "Not saved.";
        throw err;
      }
      await fileView(file.file_id, saved);
    });
  });
  box.replaceChildren(h("h2", {}, "Edit"), form);
  box.hidden = false;
  description.focus();
}

async function loadPreview(file, box) {
  // 404 (none) and 202 (being made) show nothing. The query module wants the bearer
  // token, which an <img src> cannot send: the bytes are fetched and shown through a
  // blob: URL (the CSP's img-src allows blob:), freed once decoded; bytes that do not
  // decode leave no broken image behind.
  try {
    const r = await api("query", "GET", `/api/v1/files/${file.file_id}/preview`, { query: { size: 256 }, raw: true });
    if (r.status !== 200) return;
    const url = URL.createObjectURL(await r.blob());
    const img = h("img", {
      class: "preview", alt: `Preview of ${file.original_filename}`,
      onload: () => URL.revokeObjectURL(url),
      onerror: () => { URL.revokeObjectURL(url); img.remove(); },
      src: url,
    });
    box.replaceChildren(img);
  } catch {
    /* no preview */
  }
}

async function download(file) {
  const r = await api("query", "GET", `/api/v1/files/${file.file_id}/download`, { raw: true });
  const url = URL.createObjectURL(await r.blob());
  const a = h("a", { href: url, download: file.original_filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// ---------------------------------------------------------------- upload (tus)
function uploadView() {
  const input = h("input", { type: "file", id: "upload-file", multiple: true });
  const drop = h("label", { class: "drop", for: "upload-file" },
    "Drop files here, or choose them", input);
  const description = h("textarea", { name: "description", rows: 2 });
  const tags = h("input", { name: "tags", type: "text", placeholder: "invoice, 2026" });
  const retention = h("select", { name: "retention_policy" },
    h("option", { value: "temporary" }, "temporary"), h("option", { value: "permanent" }, "permanent"));
  const list = h("ul", { id: "uploads", "aria-live": "polite" });
  for (const ev of ["dragenter", "dragover"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    for (const f of e.dataTransfer.files) startUpload(f, { description, tags, retention }, list);
  });
  input.addEventListener("change", () => {
    for (const f of input.files) startUpload(f, { description, tags, retention }, list);
    input.value = "";
  });
  render("Upload",
    h("div", { class: "grid" }, field("Description", description), field("Tags (comma-separated)", tags),
      field("Retention", retention)),
    drop, list);
}

function startUpload(file, opts, list) {
  if (!window.tus) { showError("tus-js-client did not load"); return; }
  const bar = h("progress", { max: 100, value: 0, "aria-label": `Upload of ${file.name}` });
  const status = h("span", { class: "upload-status", role: "status" }, "Starting…");
  const item = h("li", { class: "upload", "data-name": file.name }, h("strong", {}, file.name), " ", bar, " ", status);
  list.append(item);
  let resumes = 0;
  const tagList = opts.tags.value.split(",").map((t) => t.trim()).filter(Boolean);
  const metadata = { filename: file.name, filetype: file.type || "application/octet-stream",
    retention_policy: opts.retention.value };
  if (opts.description.value.trim()) metadata.description = opts.description.value.trim();
  if (tagList.length) metadata.tags = JSON.stringify(tagList);
  const upload = new window.tus.Upload(file, {
    endpoint: `${serviceBase("ingester")}/api/v1/uploads`,
    chunkSize: 4 * 1024 * 1024,
    retryDelays: [0, 500, 1000, 2000, 3000, 5000, 10000],
    removeFingerprintOnSuccess: true,
    metadata,
    onBeforeRequest: async (req) => { req.setHeader("Authorization", `Bearer ${await accessToken()}`); },
    onShouldRetry: (err, attempt) => {
      const code = err.originalResponse ? err.originalResponse.getStatus() : 0;
      const retry = code === 0 || code === 409 || code === 423 || code >= 500;
      if (retry) {
        resumes += 1;
        item.dataset.resumes = String(resumes);
        status.textContent = `Connection lost: resuming (attempt ${attempt + 1})…`;
      }
      return retry;
    },
    onProgress: (sent, total) => {
      const pct = total ? Math.floor((sent / total) * 100) : 0;
      bar.value = pct;
      item.dataset.sent = String(sent);
      status.textContent = `${pct}% (${bytes(sent)} of ${bytes(total)})`;
    },
    onError: (err) => {
      const body = err.originalResponse ? err.originalResponse.getBody() : "";
      let message = err.message.split("\n")[0];
      try { message = JSON.parse(body).error.message || message; } catch { /* keep */ }
      item.dataset.state = "failed";
      status.textContent = `Failed: ${message}`;
    },
    onSuccess: () => {
      const id = upload.url.split("/").pop();
      item.dataset.state = "done";
      item.dataset.fileId = id;
      bar.value = 100;
      status.replaceChildren("Stored", resumes ? ` (resumed ${resumes}×)` : "", ": ",
        h("a", { href: `#/file/${id}` }, "open"));
    },
  });
  upload.start();
}

// ---------------------------------------------------------------- operators
const MODES = ["edit", "rw", "ro", "ar"];

async function storageView() {
  const g = generation;
  render("Storage elements");
  const page = await api("admin", "GET", "/api/v1/storage-elements", { query: { limit: 200 } });
  const out = h("div", { id: "mode-result", "aria-live": "polite" });
  const cols = [
    { head: "Name", cell: (s) => [h("strong", {}, s.name), h("br"), h("code", {}, s.storage_id)] },
    { head: "Backend", cell: (s) => s.backend },
    { head: "Mode", cell: (s) => h("span", { "data-mode": s.storage_id }, s.mode) },
    { head: "Health", cell: (s) => s.status },
    { head: "Room", cell: (s) => {
      const c = s.capacity || {};
      const total = Math.max(c.total_bytes || 0, 0);
      return [h("meter", { min: 0, max: total || 1, value: Math.max(c.used_bytes || 0, 0), "aria-label": `Room used on ${s.name}` }),
        h("br"), h("span", { class: "muted" }, `${bytes(c.used_bytes)} of ${bytes(total)}; ${c.file_count ?? 0} files`)];
    } },
    { head: "Last poll", cell: (s) => when(s.last_seen_at) },
    { head: "Change mode", cell: (s) => {
      const sel = h("select", { "aria-label": `New mode of ${s.name}`, "data-mode-select": s.storage_id },
        MODES.map((m) => h("option", { value: m, selected: m === s.mode }, m)));
      return h("div", { class: "row" }, sel, h("button", { type: "button", class: "secondary", onclick: () => guarded(async () => {
        if (sel.value === s.mode) return;
        if (!(await confirmDialog(`Change ${s.name} from ${s.mode} to ${sel.value}?`, "Change mode"))) return;
        const answer = await api("admin", "POST", `/api/v1/storage-elements/${encodeURIComponent(s.storage_id)}/mode`,
          { json: { target_mode: sel.value, confirm: true } });
        await storageView();
        $("#mode-result").replaceChildren(h("p", { class: "notice" },
          `${s.name}: ${s.mode} → ${answer.current_mode || sel.value}`));
      }) }, "Change"));
    } },
  ];
  if (g !== generation) return;
  render("Storage elements", out, table(cols, page.items, { label: "Storage elements" }),
    h("p", { class: "muted" }, "Quarantined copies per element: ", h("a", { href: "#/quarantine" }, "Quarantine"), "."));
}

async function quarantineView() {
  const g = generation;
  render("Quarantine");
  const q = await api("admin", "GET", "/api/v1/quarantine", { query: { limit: 200 } });
  if (g !== generation) return;
  render("Quarantine",
    table([
      { head: "Storage element", cell: (i) => i.storage_element_id }, { head: "File", cell: (i) => i.file_id || "—" },
      { head: "Reason", cell: (i) => i.reason }, { head: "State", cell: (i) => i.state },
      { head: "Healthy copies", cell: (i) => i.healthy_copies }, { head: "Since", cell: (i) => when(i.quarantined_at) },
      { head: "Size", cell: (i) => bytes(i.size) },
    ], q.items, { label: "Quarantined items" }),
    q.unreachable?.length ? h("p", { class: "error" }, "Not reachable: ",
      q.unreachable.map((u) => `${u.storage_element_id} (${u.reason})`).join("; ")) : null);
}

async function jobsView() {
  const g = generation;
  render("Jobs");
  const page = await api("admin", "GET", "/api/v1/jobs", { query: { limit: 100 } });
  if (g !== generation) return;
  render("Jobs", table([
    { head: "Id", cell: (j) => j.id }, { head: "Kind", cell: (j) => j.kind }, { head: "State", cell: (j) => j.state },
    { head: "Target", cell: (j) => j.target || j.storage_element_id || "" }, { head: "Queued", cell: (j) => when(j.queued_at) },
    { head: "Finished", cell: (j) => when(j.finished_at) }, { head: "Error", cell: (j) => j.error || "" },
    { head: "", cell: (j) => (["failed", "cancelled", "aborted"].includes(j.state)
      ? h("button", { type: "button", class: "secondary", onclick: () => guarded(async () => {
        await api("admin", "POST", `/api/v1/jobs/${j.id}/retry`); await jobsView();
      }) }, "Retry")
      : ["todo", "doing", "queued", "running"].includes(j.state)
        ? h("button", { type: "button", class: "secondary", onclick: () => guarded(async () => {
          await api("admin", "POST", `/api/v1/jobs/${j.id}/cancel`); await jobsView();
        }) }, "Cancel") : "") },
  ], page.items, { label: "Jobs" }));
}

const SCOPES = ["files:read", "files:write", "files:delete", "storage:read", "storage:write", "admin:read", "admin:write", "audit:read"];

function secretBox(title, clientId, secret) {
  const status = h("span", { role: "status" });
  const box = h("div", { class: "notice", id: "secret-once" },
    h("p", {}, h("strong", {}, title), " This secret is shown once: store it now."),
    h("p", {}, "Client id: ", h("code", { id: "new-client-id" }, clientId)),
    h("p", {}, "Secret: ", h("span", { class: "secret", id: "new-secret" }, secret)),
    h("div", { class: "row" },
      h("button", { type: "button", class: "secondary", onclick: async () => {
        status.textContent = (await copyText(secret)) ? "Copied." : "Copy failed.";
      } }, "Copy secret"),
      h("button", { type: "button", onclick: () => box.remove() }, "I have stored it"), status));
  return box;
}

async function accountsView() {
  const g = generation;
  render("Users & accounts");
  const [users, accounts] = await Promise.all([
    api("admin", "GET", "/api/v1/users", { query: { limit: 200 } }),
    api("admin", "GET", "/api/v1/service-accounts", { query: { limit: 200 } }),
  ]);
  const once = h("div", { id: "once", "aria-live": "polite" });
  const saName = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_\\-]{0,47}" });
  const scopeBoxes = SCOPES.map((s) => h("label", {}, h("input", { type: "checkbox", name: "scope", value: s }), ` ${s}`));
  const saForm = h("form", { class: "grid", "aria-label": "New service account" },
    field("Name", saName), h("fieldset", { class: "wide" }, h("legend", {}, "Scopes"), scopeBoxes),
    h("div", {}, h("button", { type: "submit" }, "Create service account")));
  saForm.addEventListener("submit", (e) => { e.preventDefault(); guarded(async () => {
    const scopes = [...saForm.querySelectorAll("input[name=scope]:checked")].map((i) => i.value);
    const made = await api("admin", "POST", "/api/v1/service-accounts", { json: { name: saName.value, scopes } });
    await accountsView();
    $("#once").replaceChildren(secretBox(`Service account ${made.name} created.`, made.client_id, made.client_secret));
    $("#new-secret").focus?.();
  }); });
  const uName = h("input", { name: "username", required: true });
  const uPass = h("input", { name: "password", type: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const uRoles = h("select", { name: "roles", multiple: true, size: 4 },
    ["user", "operator", "auditor", "admin"].map((r) => h("option", { value: r, selected: r === "user" }, r)));
  const uForm = h("form", { class: "grid", "aria-label": "New user" },
    field("Username", uName), field("Password", uPass), field("Roles", uRoles),
    h("div", {}, h("button", { type: "submit" }, "Create user")));
  uForm.addEventListener("submit", (e) => { e.preventDefault(); guarded(async () => {
    const roles = [...uRoles.selectedOptions].map((o) => o.value);
    await api("admin", "POST", "/api/v1/users", { json: { username: uName.value, password: uPass.value, roles } });
    await accountsView();
  }); });
  if (g !== generation) return;
  render("Users & accounts", once,
    h("h2", {}, "Service accounts"),
    table([
      { head: "Name", cell: (a) => a.name }, { head: "Client id", cell: (a) => h("code", {}, a.client_id) },
      { head: "Scopes", cell: (a) => a.scopes.join(" ") }, { head: "Status", cell: (a) => a.status },
      { head: "Secret expires", cell: (a) => when(a.secret_expires_at) },
      { head: "", cell: (a) => h("button", { type: "button", class: "secondary", onclick: () => guarded(async () => {
        if (!(await confirmDialog(`Rotate the secret of ${a.name}? The old one stops working.`, "Rotate"))) return;
        const r = await api("admin", "POST", `/api/v1/service-accounts/${a.id}/rotate-secret`);
        $("#once").replaceChildren(secretBox(`New secret for ${a.name}.`, r.client_id || a.client_id, r.client_secret));
      }) }, "Rotate secret") },
    ], accounts.items, { label: "Service accounts" }),
    saForm,
    h("h2", {}, "Users"),
    table([
      { head: "Username", cell: (u) => u.username }, { head: "Roles", cell: (u) => u.roles.join(", ") },
      { head: "Status", cell: (u) => u.status }, { head: "Created", cell: (u) => when(u.created_at) },
    ], users.items, { label: "Users" }),
    uForm);
}

async function keysView() {
  const g = generation;
  render("Signing keys");
  const keys = await api("admin", "GET", "/api/v1/auth/keys");
  if (g !== generation) return;
  render("Signing keys",
    table([
      { head: "Key id", cell: (k) => h("code", {}, k.kid) }, { head: "Status", cell: (k) => k.status },
      { head: "Published", cell: (k) => (k.published ? "yes" : "no") }, { head: "Created", cell: (k) => when(k.created_at) },
      { head: "Retired", cell: (k) => when(k.retired_at) }, { head: "Verifies until", cell: (k) => when(k.verify_until) },
    ], keys, { label: "Signing keys" }),
    h("div", { class: "row" }, h("button", { type: "button", class: "danger", onclick: () => guarded(async () => {
      if (!(await confirmDialog("Rotate the signing key? New tokens are signed with a new key; old ones stay valid until they expire.", "Rotate key"))) return;
      await api("admin", "POST", "/api/v1/auth/keys/rotate");
      await keysView();
    }) }, "Rotate signing key")));
}

const audit = { offset: 0, limit: 50 };

async function auditView() {
  const g = generation;
  render("Audit log");
  const page = await api("admin", "GET", "/api/v1/audit", { query: { limit: audit.limit, offset: audit.offset } });
  const verdict = h("div", { id: "verify-result", "aria-live": "polite" });
  if (g !== generation) return;
  render("Audit log",
    h("div", { class: "row" }, h("button", { type: "button", onclick: () => guarded(async () => {
      verdict.replaceChildren(h("p", {}, "Verifying…"));
      const v = await api("admin", "GET", "/api/v1/audit/verify");
      verdict.replaceChildren(h("p", { class: v.ok ? "notice" : "error" }, v.ok
        ? `Chain intact: ${v.entries_checked} entries and ${v.checkpoints_checked} signed checkpoints verified.`
        : `Chain broken at entry ${v.first_bad_seq}: ${v.reason}`));
    }) }, "Verify the chain")),
    verdict,
    h("p", { class: "muted" }, `${page.total} entries`),
    table([
      { head: "#", cell: (e) => e.seq }, { head: "When", cell: (e) => when(e.at) }, { head: "Actor", cell: (e) => e.actor },
      { head: "Action", cell: (e) => e.action }, { head: "Target", cell: (e) => [e.target_type, e.target_id].filter(Boolean).join(" ") },
      { head: "Outcome", cell: (e) => e.outcome },
    ], page.items, { label: "Audit entries" }),
    h("div", { class: "row" },
      h("button", { type: "button", class: "secondary", disabled: audit.offset === 0,
        onclick: () => guarded(async () => { audit.offset = Math.max(0, audit.offset - audit.limit); await auditView(); }) }, "Previous page"),
      h("button", { type: "button", class: "secondary", disabled: !page.has_more,
        onclick: () => guarded(async () => { audit.offset += audit.limit; await auditView(); }) }, "Next page")));
}

// ---------------------------------------------------------------- shell
const ROUTES = [
  [/^#\/files$/, filesView], [/^#\/file\/([0-9a-fA-F-]{36})$/, fileView], [/^#\/upload$/, uploadView],
  [/^#\/storage$/, storageView], [/^#\/quarantine$/, quarantineView], [/^#\/jobs$/, jobsView],
  [/^#\/accounts$/, accountsView], [/^#\/keys$/, keysView], [/^#\/audit$/, auditView],
];

let generation = 0;

async function route(event) {
  generation += 1;
  if (!tokens()) { showSignedOut(); return; }
  const hash = location.hash || "#/files";
  for (const a of document.querySelectorAll("nav a")) {
    if (hash.startsWith(a.getAttribute("href"))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  for (const [re, fn] of ROUTES) {
    const m = hash.match(re);
    if (m) {
      await guarded(() => fn(...m.slice(1)));
      // After a move within the app (not the first load: the skip link comes first).
      if (event) $("#main").focus({ preventScroll: true });
      return;
    }
  }
  render("Not found", h("p", {}, "No such page. ", h("a", { href: "#/files" }, "Files")));
}

function showSignedOut() {
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  $("#who").textContent = "";
  render("Sign in", h("p", {}, "Sign in with your ArtStore account to browse, upload and manage files."),
    h("button", { type: "button", id: "signin", onclick: () => guarded(() => signIn(location.hash || "#/files")) }, "Sign in"));
}

async function showSignedIn() {
  $("#nav").hidden = false;
  $("#signout").hidden = false;
  try {
    const me = await api("admin", "GET", "/api/v1/auth/me");
    $("#who").textContent = `${me.user?.username || me.name} (${me.roles.join(", ") || me.kind})`;
  } catch (e) {
    showError(e);
  }
}

async function main() {
  $("#signout").addEventListener("click", () => guarded(async () => {
    await signOut();
    showSignedOut();
  }));
  window.addEventListener("hashchange", route);
  try {
    await loadConfig();
    const back = await completeSignIn();
    if (back) location.hash = back;
  } catch (e) {
    showError(e);
  }
  if (!tokens()) { showSignedOut(); return; }
  resume();
  await showSignedIn();
  await route();
}

window.addEventListener("error", (e) => showError(e.message));
window.addEventListener("unhandledrejection", (e) => showError(e.reason?.message || String(e.reason)));
main();
