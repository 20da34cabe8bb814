// The city map, drawn on a canvas from the city's own street data (no tiles, no network but the BFF).
// Shared by the rider app and the ops dashboard.
//
//   const map = new CityMap(container, { loadStreets: (bbox, zoom, signal) => Promise<{bounds, streets}> });
//   map.setMarkers([{ id, lat, lon, kind: "pickup" | "dropoff" | "car", color, label }]);
//
// Projection: local equirectangular (x = lon * cos(lat0), y = lat) scaled by `k` pixels per degree of latitude;
// the API zoom is the web-mercator zoom with the same metres per pixel.

const M_PER_DEG_LAT = 111_320;
const EQUATOR_M_PER_PX = 156_543.03;
const TAP_SLOP_PX = 6;
const FETCH_DEBOUNCE_MS = 200;
const MIN_K = 200;
const MAX_K = 3_000_000;
const WORLD_ZOOM = 11; // first view of a city never seen: major streets only
const BOUNDS_KEY = "acr.cityBounds";

const STREET_STYLES = [
  { minSpeed: 90, color: "#f2c27b", casing: "#d9a55a", width: 3.2 },
  { minSpeed: 50, color: "#ffffff", casing: "#cfd6df", width: 2.2 },
  { minSpeed: 0, color: "#ffffff", casing: "#dde3ea", width: 1.2 },
];

export const CAR_COLORS = {
  AVAILABLE: "#2e9e6b",
  RESERVED: "#e0a526",
  ON_TRIP: "#2f6fde",
  OUT_OF_SERVICE: "#c2413b",
};

function styleOf(speed) {
  return STREET_STYLES.find((s) => speed >= s.minSpeed) ?? STREET_STYLES[STREET_STYLES.length - 1];
}

export class CityMap {
  constructor(container, { loadStreets, onTap = null, onError = null } = {}) {
    this.container = container;
    this.loadStreets = loadStreets;
    this.onTap = onTap;
    this.onError = onError;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "city-map-canvas";
    this.canvas.setAttribute("data-testid", "map-canvas");
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", "City map");
    this.canvas.dataset.drawn = "false";
    this.canvas.dataset.streets = "0";
    container.classList.add("city-map");
    container.append(this.canvas, this.#controls());
    this.ctx = this.canvas.getContext("2d");
    this.bounds = null; // [minLon, minLat, maxLon, maxLat] of the city
    this.view = null; // { lon, lat, k } centre and pixels per degree of latitude
    this.streets = [];
    this.loaded = null; // { bbox, zoom } the streets cover
    this.markers = [];
    this.anim = new Map(); // marker id -> { fromLat, fromLon, t0 }
    this.pointers = new Map();
    this.fetchTimer = 0;
    this.abort = null;
    this.frame = 0;
    this.destroyed = false;
    this.#listen();
    this.resizeObserver = new ResizeObserver(() => this.#resize());
    this.resizeObserver.observe(container);
    this.#resize();
  }

  // --- public --------------------------------------------------------------------------------------
  /** Draw the city at once: from the bounds remembered by this browser, else from one request for the
   * whole world at a low zoom (the city's bounds and major streets); then fit the view to the city. */
  async init() {
    const cached = readBounds();
    if (cached) {
      this.bounds = cached;
      if (!this.view) this.fit(cached);
      return cached;
    }
    const world = [-180, -90, 180, 90];
    const answer = await this.loadStreets(world.join(","), WORLD_ZOOM);
    this.#show(answer, world, WORLD_ZOOM);
    if (!this.view) this.fit(this.bounds);
    return this.bounds;
  }

  fit([minLon, minLat, maxLon, maxLat], paddingPx = 24) {
    const { width, height } = this.#size();
    const lat0 = (minLat + maxLat) / 2;
    const cos = Math.cos((lat0 * Math.PI) / 180);
    const spanX = Math.max((maxLon - minLon) * cos, 1e-4);
    const spanY = Math.max(maxLat - minLat, 1e-4);
    const k = Math.min((width - 2 * paddingPx) / spanX, (height - 2 * paddingPx) / spanY);
    this.view = { lon: (minLon + maxLon) / 2, lat: lat0, k: clamp(k, MIN_K, MAX_K) };
    this.#changed();
  }

  /** Fit the view to some points (at least a few hundred metres across). */
  fitPoints(points, paddingPx = 48) {
    if (!points.length) return;
    const lats = points.map((p) => p.lat);
    const lons = points.map((p) => p.lon);
    const pad = 0.002;
    this.fit([Math.min(...lons) - pad, Math.min(...lats) - pad, Math.max(...lons) + pad, Math.max(...lats) + pad], paddingPx);
  }

  zoomBy(factor, atX = null, atY = null) {
    if (!this.view) return;
    const { width, height } = this.#size();
    const x = atX ?? width / 2;
    const y = atY ?? height / 2;
    const before = this.toLonLat(x, y);
    this.view.k = clamp(this.view.k * factor, MIN_K, MAX_K);
    const after = this.toLonLat(x, y);
    this.view.lon += before.lon - after.lon;
    this.view.lat += before.lat - after.lat;
    this.#changed();
  }

  /** Markers move smoothly from their previous position. */
  setMarkers(markers) {
    const now = performance.now();
    const previous = new Map(this.markers.map((m) => [m.id, m]));
    for (const m of markers) {
      const old = previous.get(m.id);
      if (old && m.animate !== false && (old.lat !== m.lat || old.lon !== m.lon)) {
        const shown = this.#shownPosition(old, now);
        this.anim.set(m.id, { fromLat: shown.lat, fromLon: shown.lon, t0: now });
      }
    }
    this.markers = markers;
    this.#draw();
  }

  /** The API zoom for the current scale. */
  get zoom() {
    if (!this.view) return 0;
    const cos = Math.cos((this.view.lat * Math.PI) / 180);
    const z = Math.log2((EQUATOR_M_PER_PX * cos * this.view.k) / M_PER_DEG_LAT);
    return clamp(Math.round(z), 0, 22);
  }

  viewBox(extra = 0) {
    const { width, height } = this.#size();
    const a = this.toLonLat(-width * extra, height * (1 + extra));
    const b = this.toLonLat(width * (1 + extra), -height * extra);
    return [a.lon, a.lat, b.lon, b.lat];
  }

  toScreen(lon, lat) {
    const { width, height } = this.#size();
    const cos = Math.cos((this.view.lat * Math.PI) / 180);
    return {
      x: width / 2 + (lon - this.view.lon) * cos * this.view.k,
      y: height / 2 - (lat - this.view.lat) * this.view.k,
    };
  }

  toLonLat(x, y) {
    const { width, height } = this.#size();
    const cos = Math.cos((this.view.lat * Math.PI) / 180);
    return {
      lon: this.view.lon + (x - width / 2) / (cos * this.view.k),
      lat: this.view.lat - (y - height / 2) / this.view.k,
    };
  }

  destroy() {
    this.destroyed = true;
    this.resizeObserver.disconnect();
    clearTimeout(this.fetchTimer);
    this.abort?.abort();
    cancelAnimationFrame(this.frame);
  }

  /** Fetch the streets again if the last fetch failed (call it when the server is reachable again). */
  retry() {
    if (this.canvas.dataset.stale === "true") this.#scheduleFetch();
  }

  // --- streets -------------------------------------------------------------------------------------
  #scheduleFetch() {
    clearTimeout(this.fetchTimer);
    if (this.#covered()) {
      if (!this.inflight) this.canvas.dataset.loading = "false";
      this.canvas.dataset.stale = "false"; // what is drawn covers the view
      return;
    }
    this.canvas.dataset.loading = "true";
    this.fetchTimer = setTimeout(() => this.#fetch(), this.streets.length ? FETCH_DEBOUNCE_MS : 0);
  }

  #covered() {
    if (!this.loaded || !this.view) return false;
    const [a, b, c, d] = this.viewBox();
    const [la, lb, lc, ld] = this.loaded.bbox;
    return this.loaded.zoom === this.zoom && a >= la && b >= lb && c <= lc && d <= ld;
  }

  async #fetch() {
    if (!this.view || this.destroyed) return;
    this.abort?.abort();
    const controller = new AbortController();
    this.abort = controller;
    const zoom = this.zoom;
    const box = this.viewBox(0.25).map((v) => Number(v.toFixed(6)));
    this.inflight = true;
    try {
      const answer = await this.loadStreets(box.join(","), zoom, controller.signal);
      if (controller.signal.aborted || this.destroyed) return;
      const moved = answer.bounds && this.bounds && answer.bounds.join() !== this.bounds.join();
      this.#show(answer, box, zoom);
      this.inflight = false;
      if (moved) this.fit(this.bounds); // another city than the one remembered
      if (!this.#covered()) this.#scheduleFetch();
    } catch (err) {
      if (err?.name === "AbortError" || controller.signal.aborted) return;
      this.canvas.dataset.loading = "false";
      this.canvas.dataset.stale = "true"; // what is drawn is not what the view asked for
      this.onError?.(err);
    } finally {
      if (this.abort === controller) this.inflight = false;
    }
  }

  #show(answer, box, zoom) {
    if (answer.bounds) {
      this.bounds = answer.bounds;
      saveBounds(answer.bounds);
    }
    this.streets = answer.streets ?? [];
    this.loaded = { bbox: box, zoom };
    this.#draw();
    this.canvas.dataset.streets = String(this.streets.length);
    if (this.canvas.dataset.drawn !== "true") this.canvas.dataset.firstDrawnMs = String(Math.round(performance.now()));
    this.canvas.dataset.drawn = "true";
    this.canvas.dataset.loading = "false";
    this.canvas.dataset.stale = "false";
    this.canvas.dispatchEvent(new CustomEvent("map:drawn", { bubbles: true }));
  }

  // --- drawing -------------------------------------------------------------------------------------
  #size() {
    const rect = this.container.getBoundingClientRect();
    return { width: Math.max(rect.width, 1), height: Math.max(rect.height, 1) };
  }

  #resize() {
    const { width, height } = this.#size();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    if (this.view) this.#changed();
    else this.#draw();
  }

  #changed() {
    this.#draw();
    this.#scheduleFetch();
  }

  #draw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.#paint();
    });
  }

  #paint() {
    const { ctx } = this;
    const { width, height } = this.#size();
    ctx.fillStyle = "#eef1f4";
    ctx.fillRect(0, 0, width, height);
    if (!this.view) return;
    if (this.bounds) this.#paintBounds();
    this.#paintStreets();
    const moving = this.#paintMarkers();
    if (moving) this.#draw();
  }

  #paintBounds() {
    const [minLon, minLat, maxLon, maxLat] = this.bounds;
    const a = this.toScreen(minLon, maxLat);
    const b = this.toScreen(maxLon, minLat);
    const { ctx } = this;
    ctx.fillStyle = "#f8f6f1";
    ctx.fillRect(a.x, a.y, b.x - a.x, b.y - a.y);
    ctx.strokeStyle = "#c9cfd6";
    ctx.setLineDash([6, 6]);
    ctx.lineWidth = 1;
    ctx.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
    ctx.setLineDash([]);
  }

  #paintStreets() {
    const { ctx } = this;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    const scale = clamp(this.zoom - 12, 0, 4) * 0.35 + 1;
    // Minor first, major on top; casing then fill.
    const ordered = [...this.streets].sort((a, b) => a.speedKmh - b.speedKmh);
    for (const pass of ["casing", "color"]) {
      for (const street of ordered) {
        const style = styleOf(street.speedKmh);
        ctx.strokeStyle = style[pass];
        ctx.lineWidth = style.width * scale + (pass === "casing" ? 1.6 : 0);
        this.#polyline(street.points);
        ctx.stroke();
      }
    }
  }

  #polyline(points) {
    const { ctx } = this;
    ctx.beginPath();
    points.forEach(([lon, lat], i) => {
      const p = this.toScreen(lon, lat);
      if (i === 0) ctx.moveTo(p.x, p.y);
      else ctx.lineTo(p.x, p.y);
    });
  }

  #shownPosition(marker, now) {
    const a = this.anim.get(marker.id);
    if (!a) return marker;
    const t = Math.min(1, (now - a.t0) / 900);
    if (t >= 1) {
      this.anim.delete(marker.id);
      return marker;
    }
    const e = t * (2 - t);
    return { lat: a.fromLat + (marker.lat - a.fromLat) * e, lon: a.fromLon + (marker.lon - a.fromLon) * e };
  }

  #paintMarkers() {
    const now = performance.now();
    let moving = false;
    const order = { pickup: 0, dropoff: 0, car: 1 };
    const sorted = [...this.markers].sort((a, b) => (order[a.kind] ?? 0) - (order[b.kind] ?? 0));
    for (const m of sorted) {
      const pos = this.#shownPosition(m, now);
      if (this.anim.has(m.id)) moving = true;
      const p = this.toScreen(pos.lon, pos.lat);
      if (m.kind === "pickup" || m.kind === "dropoff") this.#pin(p, m.kind === "pickup" ? "#2e9e6b" : "#1f2a37", m.label);
      else this.#car(p, m.color ?? CAR_COLORS.ON_TRIP, m.size ?? 7, m.highlight);
    }
    return moving;
  }

  #pin({ x, y }, color, label) {
    const { ctx } = this;
    ctx.save();
    ctx.fillStyle = color;
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y - 22, 10, Math.PI * 0.85, Math.PI * 0.15, false);
    ctx.lineTo(x, y);
    ctx.closePath();
    ctx.fill();
    ctx.stroke();
    ctx.fillStyle = "#ffffff";
    ctx.font = "bold 11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(label ?? "", x, y - 22);
    ctx.restore();
  }

  #car({ x, y }, color, size, highlight) {
    const { ctx } = this;
    ctx.save();
    if (highlight) {
      ctx.fillStyle = "rgba(47, 111, 222, 0.18)";
      ctx.beginPath();
      ctx.arc(x, y, size * 2.6, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.fillStyle = color;
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y, size, 0, Math.PI * 2);
    ctx.fill();
    ctx.stroke();
    ctx.restore();
  }

  // --- interaction ---------------------------------------------------------------------------------
  #controls() {
    const box = document.createElement("div");
    box.className = "map-controls";
    for (const [label, factor, id] of [["+", 1.6, "zoom-in"], ["−", 1 / 1.6, "zoom-out"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.setAttribute("aria-label", id === "zoom-in" ? "Zoom in" : "Zoom out");
      button.setAttribute("data-testid", `map-${id}`);
      button.addEventListener("click", () => this.zoomBy(factor));
      box.append(button);
    }
    return box;
  }

  #listen() {
    const c = this.canvas;
    c.style.touchAction = "none";
    c.addEventListener("pointerdown", (e) => {
      c.setPointerCapture(e.pointerId);
      this.pointers.set(e.pointerId, { x: e.offsetX, y: e.offsetY, startX: e.offsetX, startY: e.offsetY });
      this.tapCandidate = this.pointers.size === 1;
    });
    c.addEventListener("pointermove", (e) => {
      const p = this.pointers.get(e.pointerId);
      if (!p || !this.view) return;
      if (Math.hypot(e.offsetX - p.startX, e.offsetY - p.startY) > TAP_SLOP_PX) this.tapCandidate = false;
      if (this.pointers.size === 1) {
        const cos = Math.cos((this.view.lat * Math.PI) / 180);
        this.view.lon -= (e.offsetX - p.x) / (cos * this.view.k);
        this.view.lat += (e.offsetY - p.y) / this.view.k;
        this.#changed();
      } else if (this.pointers.size === 2) {
        const [a, b] = [...this.pointers.values()];
        const before = Math.hypot(a.x - b.x, a.y - b.y);
        p.x = e.offsetX;
        p.y = e.offsetY;
        const after = Math.hypot(a.x - b.x, a.y - b.y);
        if (before > 0) this.zoomBy(after / before, (a.x + b.x) / 2, (a.y + b.y) / 2);
      }
      p.x = e.offsetX;
      p.y = e.offsetY;
    });
    const end = (e) => {
      const p = this.pointers.get(e.pointerId);
      this.pointers.delete(e.pointerId);
      if (p && this.tapCandidate && e.type === "pointerup" && this.onTap && this.view) {
        const { lat, lon } = this.toLonLat(e.offsetX, e.offsetY);
        this.onTap({ lat, lon });
      }
      this.tapCandidate = false;
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        this.zoomBy(Math.exp(-e.deltaY * 0.0015), e.offsetX, e.offsetY);
      },
      { passive: false },
    );
  }
}

function readBounds() {
  try {
    const value = JSON.parse(localStorage.getItem(BOUNDS_KEY));
    return Array.isArray(value) && value.length === 4 && value.every(Number.isFinite) ? value : null;
  } catch {
    return null;
  }
}

function saveBounds(bounds) {
  try {
    localStorage.setItem(BOUNDS_KEY, JSON.stringify(bounds));
  } catch {
    // storage full or disabled: the next visit asks again
  }
}

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}
