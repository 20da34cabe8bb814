// An address field with autocomplete: ARIA combobox + listbox, debounced, arrows + Enter + Escape.

const DEBOUNCE_MS = 150;
let counter = 0;

export class PlaceField {
  /**
   * @param root an element holding <label>, <input> (role=combobox) and <ul> (role=listbox)
   * @param search (text, signal) => Promise<[{addressId, label, lat, lon}]>
   * @param onChoose (place | null) => void
   */
  constructor(root, { search, onChoose, onError }) {
    this.root = root;
    this.input = root.querySelector("input");
    this.list = root.querySelector("[role=listbox]");
    this.search = search;
    this.onChoose = onChoose;
    this.onError = onError;
    this.results = [];
    this.active = -1;
    this.place = null;
    this.timer = 0;
    this.abort = null;
    this.seq = 0;
    const id = `place-${++counter}`;
    this.list.id = `${id}-list`;
    this.input.setAttribute("role", "combobox");
    this.input.setAttribute("aria-autocomplete", "list");
    this.input.setAttribute("aria-expanded", "false");
    this.input.setAttribute("aria-controls", this.list.id);
    this.input.setAttribute("autocomplete", "off");
    this.#listen();
  }

  /** Set the field from elsewhere (a map tap); does not open the list. */
  set(place) {
    this.place = place;
    this.input.value = place ? place.label : "";
    this.#close();
  }

  clear() {
    this.set(null);
  }

  #listen() {
    this.input.addEventListener("input", () => {
      if (this.place) {
        this.place = null;
        this.onChoose(null);
      }
      clearTimeout(this.timer);
      const text = this.input.value.trim();
      if (!text) {
        this.abort?.abort();
        this.#close();
        return;
      }
      this.timer = setTimeout(() => this.#lookup(text), DEBOUNCE_MS);
    });
    this.input.addEventListener("keydown", (e) => {
      const open = this.input.getAttribute("aria-expanded") === "true";
      if (e.key === "ArrowDown" && this.results.length) {
        e.preventDefault();
        if (!open) this.#open();
        this.#highlight((this.active + 1) % this.results.length);
      } else if (e.key === "ArrowUp" && this.results.length) {
        e.preventDefault();
        if (!open) this.#open();
        this.#highlight(this.active <= 0 ? this.results.length - 1 : this.active - 1);
      } else if (e.key === "Enter" && open) {
        e.preventDefault();
        this.#choose(this.active >= 0 ? this.active : 0);
      } else if (e.key === "Escape" && open) {
        e.preventDefault();
        this.#close();
      }
    });
    this.input.addEventListener("blur", () => setTimeout(() => this.#close(), 150));
    this.list.addEventListener("mousedown", (e) => e.preventDefault());
    this.list.addEventListener("click", (e) => {
      const li = e.target.closest("[role=option]");
      if (li) this.#choose(Number(li.dataset.index));
    });
  }

  async #lookup(text) {
    this.abort?.abort();
    const controller = new AbortController();
    this.abort = controller;
    const seq = ++this.seq;
    try {
      const results = await this.search(text, controller.signal);
      if (seq !== this.seq || this.input.value.trim() !== text) return;
      this.results = results;
      this.#render();
    } catch (err) {
      if (err?.name === "AbortError") return;
      this.onError?.(err);
    }
  }

  #render() {
    this.list.replaceChildren(
      ...this.results.map((r, i) => {
        const li = document.createElement("li");
        li.id = `${this.list.id}-${i}`;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.dataset.index = String(i);
        li.dataset.testid = "suggestion";
        li.textContent = r.label;
        return li;
      }),
    );
    if (this.results.length) {
      const empty = this.list.querySelector(".empty");
      empty?.remove();
      this.#open();
      this.#highlight(0);
    } else {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "No matching address";
      this.list.append(li);
      this.#open();
      this.active = -1;
    }
  }

  #open() {
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
  }

  #close() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
    this.active = -1;
  }

  #highlight(index) {
    this.active = index;
    for (const li of this.list.querySelectorAll("[role=option]")) {
      const on = Number(li.dataset.index) === index;
      li.setAttribute("aria-selected", String(on));
      li.classList.toggle("active", on);
      if (on) {
        this.input.setAttribute("aria-activedescendant", li.id);
        li.scrollIntoView({ block: "nearest" });
      }
    }
  }

  #choose(index) {
    const place = this.results[index];
    if (!place) return;
    this.set(place);
    this.results = [];
    this.onChoose(place);
  }
}
