// The photo page: choose, drop or paste a photo (or a clip / animated GIF), convert it through
// /api/convert, show before/after and offer the download. A clip's progress comes from
// /api/progress/<token> while the upload's request runs. Plain JavaScript, no build step, no external requests.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const strings = JSON.parse($("strings").textContent);
  const config = JSON.parse($("config").textContent);

  function t(key, params) {
    let text = strings[key] || key;
    for (const [name, value] of Object.entries(params || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }

  const form = $("convert-form");
  const input = $("image");
  const dropzone = $("dropzone");
  const chosen = $("chosen");
  const styleSelect = $("style");
  const stylePreview = $("style-preview");
  function showPreview() {
    const option = styleSelect.options[styleSelect.selectedIndex];
    const url = option && option.dataset.preview;
    stylePreview.hidden = !url;
    if (url) {
      stylePreview.src = url;
      stylePreview.alt = option.textContent;
    }
  }
  styleSelect.addEventListener("change", showPreview);
  showPreview();
  const faces = $("faces");
  const sideBySide = $("side_by_side");
  const button = $("convert");
  const status = $("status");
  const error = $("error");
  const results = $("results");
  const before = $("before");
  const noPreview = $("no-preview");
  const afterPane = $("after-pane");
  const after = $("after");
  const afterPlaceholder = $("after-placeholder");
  const afterText = $("after-text");
  const download = $("download");
  const took = $("took");
  const beforeVideo = $("before-video");
  const afterVideo = $("after-video");
  const clipProgress = $("clip-progress");
  let poller = null;

  const isClip = (picked) =>
    (picked.type || "").startsWith("video/") || picked.type === "image/gif" ||
    picked.type === "image/webp";

  // Clips have a limit of their own (ANIMEBOT_CLIP_MAX_MB), photos theirs.
  const tooLarge = (picked) => isClip(picked)
    ? picked.size > config.clipMaxBytes && t("error.too_large_bytes", { limit_mb: config.clipLimitMb })
    : picked.size > config.maxBytes && t("error.too_large_bytes", { limit_mb: config.limitMb });

  function stopPolling() {
    if (poller) clearInterval(poller);
    poller = null;
    clipProgress.hidden = true;
  }

  function pollProgress(token) {
    stopPolling();
    poller = setInterval(async () => {
      try {
        const answer = await fetch("/api/progress/" + token, { cache: "no-store" });
        if (!answer.ok || !poller) return;
        const { done, total } = await answer.json();
        const percent = Math.floor((100 * done) / Math.max(1, total));
        if (ticker) {
          clearInterval(ticker);
          ticker = null;
        }
        clipProgress.hidden = false;
        clipProgress.value = percent;
        const text = t("clip.progress", { percent });
        afterText.textContent = text;
        status.textContent = text;
      } catch (_) {
        // a missed poll: the next one tries again
      }
    }, 400);
  }

  function newToken() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  form.noValidate = true; // this script checks the form itself, with translated messages

  let file = null;
  let beforeUrl = null;
  let afterUrl = null;
  let ticker = null;
  let busy = false;

  const seconds = (ms) => {
    const digits = ms < 1000 ? 2 : 1;
    return (ms / 1000).toLocaleString(config.lang, {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
  };

  function setStatus(text) {
    status.textContent = text;
  }

  function uploading(percent) {
    const text = t("web.uploading", { percent });
    status.textContent = text;
    afterText.textContent = text;
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
  }

  function hideError() {
    error.hidden = true;
    error.textContent = "";
  }

  function resetAfter() {
    if (afterUrl) URL.revokeObjectURL(afterUrl);
    afterUrl = null;
    after.hidden = true;
    after.removeAttribute("src");
    afterVideo.hidden = true;
    afterVideo.removeAttribute("src");
    after.alt = "";
    afterPlaceholder.hidden = false;
    afterText.textContent = t("web.press_convert");
    download.hidden = true;
    took.textContent = "";
  }

  function choose(picked) {
    if (!picked || busy) return;
    file = picked;
    hideError();
    setStatus("");
    chosen.textContent = t("web.chosen", { name: picked.name || "image" });
    chosen.hidden = false;
    results.hidden = false;
    if (beforeUrl) URL.revokeObjectURL(beforeUrl);
    beforeUrl = URL.createObjectURL(picked);
    noPreview.hidden = true;
    const video = (picked.type || "").startsWith("video/");
    before.hidden = video;
    beforeVideo.hidden = !video;
    if (video) {
      before.removeAttribute("src");
      beforeVideo.src = beforeUrl;
    } else {
      beforeVideo.removeAttribute("src");
      before.src = beforeUrl;
    }
    resetAfter();
    const refusal = tooLarge(picked);
    if (refusal) showError(refusal);
  }

  function useFiles(files) {
    if (!files || !files.length) return;
    try {
      const transfer = new DataTransfer();
      transfer.items.add(files[0]);
      input.files = transfer.files;
    } catch (_) {
      // Older browsers cannot set input.files; the upload uses `file` directly anyway.
    }
    choose(files[0]);
  }

  before.addEventListener("error", () => {
    if (!before.getAttribute("src")) return;
    before.hidden = true;
    noPreview.hidden = false;
  });

  input.addEventListener("change", () => choose(input.files && input.files[0]));

  // Drop anywhere on the page; the drop zone lights up while a file is dragged over it.
  const hasFiles = (event) =>
    event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  window.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dropzone.classList.add("dragover");
  });
  window.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null) dropzone.classList.remove("dragover");
  });
  window.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dropzone.classList.remove("dragover");
    useFiles(event.dataTransfer.files);
  });

  document.addEventListener("paste", (event) => {
    const files = event.clipboardData && event.clipboardData.files;
    if (files && files.length && (files[0].type || "").startsWith("image/")) {
      event.preventDefault();
      useFiles(files);
    }
  });

  function setBusy(on) {
    busy = on;
    button.disabled = on;
    button.classList.toggle("busy", on);
    afterPane.setAttribute("aria-busy", on ? "true" : "false");
    if (!on && ticker) {
      clearInterval(ticker);
      ticker = null;
    }
    if (!on) stopPolling();
  }

  function painting() {
    const started = Date.now();
    const show = () => {
      const text = t("web.painting", { seconds: Math.floor((Date.now() - started) / 1000) });
      afterText.textContent = text;
      status.textContent = text;
    };
    show();
    if (!ticker) ticker = setInterval(show, 1000);
  }

  function extension(mime) {
    if (mime.includes("png")) return "png";
    if (mime.includes("webp")) return "webp";
    if (mime.includes("mp4")) return "mp4";
    return "jpg";
  }

  function baseName(name) {
    const stem = (name || "photo").replace(/\.[^.]*$/, "").replace(/[^\p{L}\p{N}_-]+/gu, "_");
    return stem.slice(0, 60) || "photo";
  }

  function styleLabel(name) {
    const option = Array.from(styleSelect.options).find((o) => o.value === name);
    return option ? option.textContent : name;
  }

  function succeed(xhr) {
    const mime = (xhr.getResponseHeader("Content-Type") || "image/jpeg").split(";")[0];
    const style = decodeURIComponent(xhr.getResponseHeader("X-Animebot-Style") || "") || styleSelect.value;
    afterUrl = URL.createObjectURL(xhr.response);
    if (mime.startsWith("video/")) {
      afterVideo.src = afterUrl;
      afterVideo.hidden = false;
      afterVideo.play().catch(() => {}); // autoplay may be refused: the controls remain
    } else {
      after.alt = t("web.result_alt", { style: styleLabel(style) });
      after.src = afterUrl;
      after.hidden = false;
    }
    afterPlaceholder.hidden = true;
    download.href = afterUrl;
    download.download = baseName(file && file.name) + "_" + baseName(style) + "." + extension(mime);
    download.hidden = false;
    const ms = Number(xhr.getResponseHeader("X-Animebot-Time-Ms") || 0);
    const cached = xhr.getResponseHeader("X-Animebot-Cache") === "hit";
    const parts = [t(cached ? "web.cached" : "web.took", { seconds: seconds(ms) })];
    const facesFound = Number(xhr.getResponseHeader("X-Animebot-Faces") || 0);
    if (facesFound > 0) parts.push(t("web.faces_found", { count: facesFound }));
    for (const note of (xhr.getResponseHeader("X-Animebot-Notes") || "").split(",")) {
      if (note && strings["note." + note]) parts.push(strings["note." + note]);
    }
    const clipNotes = xhr.getResponseHeader("X-Animebot-Notes-Text");
    if (clipNotes) parts.push(decodeURIComponent(clipNotes));
    took.textContent = parts.join(" "); // a polite live region: read out once
    setStatus("");
    const box = afterPane.getBoundingClientRect();
    if (box.top > window.innerHeight * 0.6) {
      const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      afterPane.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "start" });
    }
  }

  async function failFromResponse(xhr) {
    let message = null;
    try {
      const body = JSON.parse(await xhr.response.text());
      message = typeof body.message === "string" ? body.message : null;
    } catch (_) {
      message = null;
    }
    fail(message || t("error.internal", { ref: "-" }));
  }

  function fail(message) {
    setStatus("");
    resetAfter();
    showError(message);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (busy) return;
    hideError();
    if (!file) {
      showError(t("web.no_photo"));
      input.focus();
      return;
    }
    const refusal = tooLarge(file);
    if (refusal) {
      showError(refusal);
      return;
    }
    const data = new FormData();
    data.append("lang", config.lang);
    data.append("style", styleSelect.value);
    data.append("faces", faces.checked ? "1" : "0");
    data.append("side_by_side", sideBySide.checked ? "1" : "0");
    data.append("image", file, file.name || "image");
    const token = isClip(file) ? newToken() : null;
    if (token) data.append("progress", token);

    resetAfter();
    setBusy(true);
    uploading(0);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.responseType = "blob";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && e.loaded < e.total) {
        uploading(Math.round((100 * e.loaded) / e.total));
      }
    });
    xhr.upload.addEventListener("load", () => {
      painting();
      if (token) pollProgress(token);
    });
    xhr.addEventListener("load", () => {
      setBusy(false);
      const type = xhr.getResponseHeader("Content-Type") || "";
      if (xhr.status === 200 && (type.startsWith("image/") || type.startsWith("video/"))) {
        succeed(xhr);
      } else {
        failFromResponse(xhr);
      }
    });
    xhr.addEventListener("error", () => {
      setBusy(false);
      fail(t("web.network_error"));
    });
    xhr.send(data);
  });
})();
