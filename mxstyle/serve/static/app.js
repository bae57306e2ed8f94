// The mxstyle web page: choose a photo, pick a style, POST /v1/stylize, show before and after.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, model: null, limits: null, busy: false, resultUrl: null, beforeUrl: null };

function say(text, kind) {
  const box = $("message");
  box.textContent = text || "";
  box.className = "message" + (kind ? " " + kind : "");
}

function refreshButton() {
  $("go").disabled = !(state.file && state.model) || state.busy;
}

async function loadInfo() {
  try {
    const info = await (await fetch("/v1/info")).json();
    state.limits = info.limits;
    $("server").textContent = `mxstyle ${info.version}, ${info.workers} worker(s)`;
  } catch (err) {
    $("server").textContent = "mxstyle";
  }
}

async function loadModels() {
  let body;
  try {
    const response = await fetch("/v1/models");
    body = await response.json();
  } catch (err) {
    say("Cannot reach the server to list the styles.", "error");
    return;
  }
  const box = $("styles");
  box.replaceChildren();
  for (const model of body.models) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "style";
    button.dataset.model = model.name;
    button.setAttribute("role", "radio");
    button.setAttribute("aria-checked", "false");
    button.title = `${model.style.title}${model.style.license ? " (" + model.style.license + ")" : ""}`;
    if (model.thumbnail) {
      const img = document.createElement("img");
      img.src = model.thumbnail;
      img.alt = model.style.title;
      button.append(img);
    }
    const label = document.createElement("span");
    label.textContent = model.name;
    button.append(label);
    button.addEventListener("click", () => pickStyle(model.name));
    box.append(button);
  }
  if (!state.model && body.default) {
    markStyle(body.default);
  }
}

function markStyle(name) {
  state.model = name;
  for (const button of document.querySelectorAll(".style")) {
    const on = button.dataset.model === name;
    button.classList.toggle("selected", on);
    button.setAttribute("aria-checked", on ? "true" : "false");
  }
  refreshButton();
}

function pickStyle(name) {
  markStyle(name);
  if (state.file) {
    stylize();
  }
}

function choose(file) {
  if (!file) {
    return;
  }
  if (state.limits && file.size > state.limits.max_upload_bytes) {
    const mb = (state.limits.max_upload_bytes / 1048576).toFixed(0);
    say(`That file is ${(file.size / 1048576).toFixed(1)} MB; the server takes at most ${mb} MB.`, "error");
    return;
  }
  state.file = file;
  if (state.beforeUrl) {
    URL.revokeObjectURL(state.beforeUrl);
  }
  state.beforeUrl = URL.createObjectURL(file);
  $("before").src = state.beforeUrl;
  $("before").hidden = false;
  $("before-empty").hidden = true;
  $("drop-text").textContent = file.name;
  say("");
  refreshButton();
}

async function errorText(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body.error) {
      message = body.error;
    }
  } catch (err) {
    // not JSON: keep the status line
  }
  if (response.status === 503) {
    const wait = response.headers.get("Retry-After");
    return `The server is busy right now${wait ? `; try again in ${wait} s` : ""}. (${message})`;
  }
  if (response.status === 413) {
    return `That file is too large. (${message})`;
  }
  if (response.status === 422 || response.status === 400) {
    return `That file cannot be used: ${message}`;
  }
  if (response.status === 504) {
    return `That took too long. (${message})`;
  }
  return message;
}

async function stylize() {
  if (!state.file || !state.model || state.busy) {
    return;
  }
  state.busy = true;
  refreshButton();
  say("Painting…", "working");
  const form = new FormData();
  form.append("model", state.model);
  form.append("strength", String(Number($("strength").value) / 100));
  form.append("preserve_colors", $("preserve").checked ? "true" : "false");
  form.append("format", "jpeg");
  form.append("image", state.file, state.file.name);
  try {
    const response = await fetch("/v1/stylize", { method: "POST", body: form });
    if (!response.ok) {
      say(await errorText(response), "error");
      return;
    }
    const blob = await response.blob();
    if (state.resultUrl) {
      URL.revokeObjectURL(state.resultUrl);
    }
    state.resultUrl = URL.createObjectURL(blob);
    const after = $("after");
    after.dataset.model = response.headers.get("X-Mxstyle-Model") || state.model;
    after.src = state.resultUrl;
    after.hidden = false;
    $("after-empty").hidden = true;
    const stem = state.file.name.replace(/\.[^.]*$/, "") || "photo";
    const link = $("download");
    link.href = state.resultUrl;
    link.download = `${stem}_${after.dataset.model}.jpg`;
    link.hidden = false;
    const seconds = Number(response.headers.get("X-Mxstyle-Seconds") || 0);
    $("timing").textContent = `(${after.dataset.model}, ${seconds.toFixed(2)} s)`;
    say("");
  } catch (err) {
    say("The server did not answer; is it still running?", "error");
  } finally {
    state.busy = false;
    refreshButton();
  }
}

function setUp() {
  const drop = $("drop");
  $("photo").addEventListener("change", (event) => choose(event.target.files[0]));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    choose(event.dataTransfer.files[0]);
  });
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = `${$("strength").value}%`;
  });
  $("strength").addEventListener("change", stylize);
  $("preserve").addEventListener("change", stylize);
  $("go").addEventListener("click", stylize);
  loadInfo();
  loadModels();
}

setUp();
