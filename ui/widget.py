"""The website widget: one `<script>` tag puts the customer chat on any page of a shop's own site, as a corner bubble
that opens the chat (`/widget/`, a conversation of its own) in a frame.

    <script src="https://support.shop.example/widget.js" data-lang="fr" async></script>

`/widget.js` serves the script, `/widget-example` a page that uses it. The shop's site must be listed in `[server]
allowed_origins`: the chat's `Content-Security-Policy: frame-ancestors` lets exactly those sites frame it, and on any
other site the script adds nothing and says in the browser console what to configure. Optional attributes:
`data-lang` (en, es, fr, de, zh; default the page's `lang`, then the browser's), `data-position` (`right`, `left`).
"""

# No `from __future__ import annotations`: FastAPI reads the route functions' hints at runtime.
import html
import json
from typing import Any

from ui.i18n import TABLES

FRAME_PATH = "/widget/"
"""Where the framed chat is mounted."""

_SCRIPT = """(() => {
  "use strict";
  const me = document.currentScript;
  if (!me || window.__supportWidget) return;
  window.__supportWidget = true;
  const origin = new URL(me.src, location.href).origin;
  const allowed = __ALLOWED__;
  if (location.origin !== origin && !allowed.includes(location.origin)) {
    console.warn(`support widget: ${location.origin} may not frame the chat at ${origin}; add it to [server] ` +
                 `allowed_origins in the chat server's config`);
    return;
  }
  const labels = __LABELS__;
  const wanted = (me.dataset.lang || document.documentElement.lang || navigator.language || "en").toLowerCase();
  const lang = labels[wanted.split(/[-_]/)[0]] ? wanted.split(/[-_]/)[0] : "en";
  const text = labels[lang];
  const side = me.dataset.position === "left" ? "left" : "right";
  const root = document.createElement("div");
  root.id = "support-widget";
  const shadow = root.attachShadow({mode: "open"});
  shadow.innerHTML = `<style>
    :host { all: initial; }
    .bubble { position: fixed; bottom: 20px; ${side}: 20px; z-index: 2147483646; width: 60px; height: 60px;
      border-radius: 50%; border: 0; background: #2563eb; color: #fff; cursor: pointer; display: grid;
      place-items: center;
      box-shadow: 0 4px 14px rgb(0 0 0 / 30%); }
    .bubble:focus-visible { outline: 3px solid #93c5fd; outline-offset: 2px; }
    .dot { position: absolute; top: 4px; right: 4px; width: 14px; height: 14px; border-radius: 50%;
      background: #ef4444; border: 2px solid #fff; }
    .dot[hidden] { display: none; }
    .panel { position: fixed; bottom: 92px; ${side}: 20px; z-index: 2147483647; width: min(400px, calc(100vw - 40px));
      height: min(600px, calc(100vh - 120px)); border: 0; border-radius: 14px; background: #fff;
      box-shadow: 0 8px 30px rgb(0 0 0 / 30%); }
    .panel[hidden] { display: none; }
  </style>
  <iframe class="panel" hidden></iframe>
  <button class="bubble" type="button" aria-expanded="false"><svg viewBox="0 0 24 24" width="30" height="30"
    aria-hidden="true"><path fill="currentColor" d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2
    2 0 0 1 2-2z"/></svg><span class="dot" hidden></span></button>`;
  const bubble = shadow.querySelector(".bubble");
  const panel = shadow.querySelector(".panel");
  const dot = shadow.querySelector(".dot");
  const label = (open) => {
    bubble.setAttribute("aria-label", open ? text.close_chat : text.open_chat);
    bubble.title = open ? text.close_chat : text.open_chat;
  };
  label(false);
  panel.title = text.title;
  bubble.addEventListener("click", () => {
    const open = panel.hidden;
    if (open && !panel.src) panel.src = `${origin}__FRAME__?lang=${encodeURIComponent(lang)}`;
    panel.hidden = !open;
    bubble.setAttribute("aria-expanded", String(open));
    label(open);
    if (open) dot.hidden = true;
  });
  window.addEventListener("message", (e) => {
    if (e.origin !== origin || e.source !== panel.contentWindow) return;
    const arrived = e.data && e.data.type === "support-chat" && e.data.event === "reply-arrived";
    if (arrived && panel.hidden) dot.hidden = false;
  });
  (document.body || document.documentElement).appendChild(root);
})();
"""

_EXAMPLE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{company} shop: widget example</title>
<style>
  body {{ font-family: system-ui, sans-serif; margin: 0; color: #1f2937; background: #f8fafc; }}
  header {{ background: #0f172a; color: #fff; padding: 18px 32px; font-size: 22px; font-weight: 700; }}
  main {{ max-width: 760px; margin: 32px auto; padding: 0 24px; line-height: 1.6; }}
  code {{ background: #e2e8f0; padding: 2px 6px; border-radius: 4px; }}
</style>
</head>
<body>
<header>{company}</header>
<main>
<h1>Our shop</h1>
<p>This page stands for any page of your own site. The chat bubble in the corner comes from one tag:</p>
<p><code>{tag}</code></p>
<p>List your site in <code>[server] allowed_origins</code> of the chat server's config so the chat may be framed
there.</p>
</main>
<script src="/widget.js" async></script>
</body>
</html>
"""


def widget_script(allowed_origins: tuple[str, ...] | list[str], company: str = "") -> str:
    """The widget's JavaScript: the sites allowed to frame the chat and the bubble's labels in every page
    language are written into it."""
    from ui.i18n import text

    labels = {code: {"open_chat": text("open_chat", code), "close_chat": text("close_chat", code),
                     "title": text("title", code, company=company)} for code in TABLES}  # fmt: skip
    # JSON inside a script: "</" cannot end it early
    allowed = json.dumps(sorted(allowed_origins)).replace("</", "<\\/")
    return (_SCRIPT.replace("__ALLOWED__", allowed)
            .replace("__LABELS__", json.dumps(labels, ensure_ascii=False).replace("</", "<\\/"))
            .replace("__FRAME__", FRAME_PATH))  # fmt: skip


def example_page(company: str, script_url: str) -> str:
    """A stand-in shop page with the widget on it, showing the tag to copy."""
    tag = f'<script src="{script_url}" async></script>'
    return _EXAMPLE.format(company=html.escape(company), tag=html.escape(tag))


def create_router(config: Any) -> Any:
    """`GET /widget.js` and `GET /widget-example` (register before the chat page's catch-all mount at `/`)."""
    from fastapi import APIRouter, Request
    from fastapi.responses import HTMLResponse, Response

    from ui.security import origin_of

    router = APIRouter(include_in_schema=False)
    script = widget_script(tuple(origin_of(o) for o in config.server.allowed_origins), config.prompt.company)

    @router.get("/widget.js")
    def widget_js() -> Response:
        return Response(script, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=300"})  # fmt: skip

    @router.get("/widget-example", response_class=HTMLResponse)
    def widget_example(request: Request) -> str:
        root = config.server.root_url or str(request.base_url).rstrip("/")
        return example_page(config.prompt.company, f"{root}/widget.js")

    return router
