"""One FastAPI app for everything: the customer chat at `/`, the agent console at `/agent`, the admin page at
`/admin` (Gradio Blocks), the login form, and the HTTP API under `/v1` and `/api`."""

# No `from __future__ import annotations`: FastAPI reads the route functions' hints at runtime.
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ui.auth import COOKIE, GuardMiddleware, gradio_auth, login_page, logout_page, safe_next
from ui.errors import GradioEndpointCheck, api_validation_handler, gradio_validation_handler
from ui.security import LimitsMiddleware, SiteMiddleware
from ui.throttle import LoginThrottle

if TYPE_CHECKING:
    from chatbot.config import AppConfig
    from chatbot.engine import Engine

log = logging.getLogger(__name__)


def create_app(config: "AppConfig | None" = None, engine: "Engine | None" = None, *, follow: bool = False) -> Any:
    """The web app over `engine` (warmed up here when it is not yet); a new engine from `config` when None.

    An engine created here is closed when the app shuts down; one passed in belongs to the caller. With `follow`,
    while the app runs it swaps in the knowledge-base version and the adapter other processes make current
    (`chatbot.watch`, every `[server] watch_interval_s`): what each of several workers does.
    """
    import gradio as gr
    from fastapi import FastAPI, Form, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import HTMLResponse, RedirectResponse

    from chatbot.config import AppConfig
    from ui import admin, agent, customer, desk_api, widget
    from ui.api import ActiveChats, create_router

    config = config or (engine.config if engine is not None else AppConfig.load())
    owned = engine is None
    if engine is None:
        from chatbot.engine import Engine

        engine = Engine.from_config(config)
    engine.warm_up()
    store = engine.store
    ttl = config.server.session_ttl
    active = ActiveChats()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        from chatbot.watch import start_watchers

        watchers = start_watchers(engine, config.server.watch_interval_s) if follow else []
        yield
        for watcher in watchers:
            watcher.stop()
        if owned:
            engine.close()

    app = FastAPI(title="Support chatbot", lifespan=lifespan, docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json")  # fmt: skip
    app.state.engine = engine
    app.state.active = active
    limits = config.limits
    # the counts in the store: every worker on it counts the same failures
    throttle = LoginThrottle(limits.login_failures, limits.login_address_failures, limits.login_lockout_s,
                             store=store)  # fmt: skip
    app.state.login_throttle = throttle
    pages: dict[str, Any] = {}  # mount prefix -> Blocks, filled below once the pages are built
    app.add_middleware(GradioEndpointCheck, pages=pages)  # innermost: unknown endpoints after the login check
    # the login check before the upload refusal, so an anonymous caller learns nothing about /agent's routes
    app.add_middleware(LimitsMiddleware, max_body_bytes=config.limits.max_body_bytes)
    app.add_middleware(GuardMiddleware, store=store)
    # Starlette's CORS middleware, which also turns off Gradio's own (it echoed any loopback Origin, with credentials)
    app.add_middleware(CORSMiddleware, allow_origins=list(config.server.allowed_origins), allow_credentials=False,
                       allow_methods=["GET", "POST"], allow_headers=["*"])  # fmt: skip
    app.add_middleware(SiteMiddleware, root_url=config.server.root_url,
                       allowed_origins=config.server.allowed_origins)  # outermost  # fmt: skip
    app.add_exception_handler(RequestValidationError, api_validation_handler)
    app.include_router(create_router(engine, config, active))
    app.include_router(widget.create_router(config))

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(next: str = "/agent") -> str:  # noqa: A002 - the query parameter's name
        return login_page(safe_next(next))

    @app.post("/login", include_in_schema=False)
    def login(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/agent")):  # noqa: A002
        name, address = username.strip(), request.client.host if request.client else "unknown"
        target = safe_next(next)
        wait = throttle.begin(name, address)
        if wait:  # refused before the password is checked, right or wrong
            return HTMLResponse(login_page(target, f"Too many attempts; try again in {wait} s.", username),
                                status_code=429, headers={"Retry-After": str(wait)})  # fmt: skip
        user = None
        try:
            user = store.authenticate(name, password) if name and password else None
        finally:
            throttle.finish(name, address, ok=user is not None)
        if user is None:
            return HTMLResponse(login_page(target, "Wrong user name or password.", username), status_code=401)
        if target.startswith("/admin") and user.role != "admin":
            target = "/agent"
        token = store.create_session(user.name, ttl)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, max_age=int(ttl), httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/")  # fmt: skip
        return response

    @app.get("/logout", response_class=HTMLResponse, include_in_schema=False)
    def logout_form() -> str:  # a link cannot sign anybody out: the form posts from this site
        return logout_page()

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request):
        token = request.cookies.get(COOKIE)
        if token:
            store.delete_session(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/agent", include_in_schema=False)
    @app.get("/admin", include_in_schema=False)
    def with_slash(request: Request):  # a mounted Gradio page answers only below its prefix (/agent/, /admin/)
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{request.url.path}/{query}", status_code=307)

    concurrency = max(1, config.scheduler.max_batch)
    queue_size = max(1, config.scheduler.max_queue)
    agent_blocks = agent.build(engine).queue(default_concurrency_limit=4, max_size=queue_size)
    app.include_router(desk_api.create_router(agent_blocks.console.desk))  # before the console's mount
    admin_blocks = admin.build(engine).queue(default_concurrency_limit=2, max_size=queue_size)
    customer_blocks = customer.build(engine, active, concurrency=concurrency, company=config.prompt.company).queue(
        default_concurrency_limit=concurrency, max_size=queue_size
    )
    widget_blocks = customer.build(engine, active, concurrency=concurrency, company=config.prompt.company,
                                   storage_key=customer.WIDGET_STORAGE_KEY, height=customer.WIDGET_HEIGHT).queue(
                                       default_concurrency_limit=concurrency, max_size=queue_size)  # fmt: skip
    app.state.blocks = {"customer": customer_blocks, "agent": agent_blocks, "admin": admin_blocks,
                        "widget": widget_blocks}  # fmt: skip
    common = {"ssr_mode": False, "footer_links": [], "css": customer.CSS}
    common["blocked_paths"] = blocked_paths(config, engine)
    gr.mount_gradio_app(app, agent_blocks, path="/agent", auth_dependency=gradio_auth(store, ("agent", "admin")),
                        **common)  # fmt: skip
    gr.mount_gradio_app(app, admin_blocks, path="/admin", auth_dependency=gradio_auth(store, ("admin",)),
                        max_file_size=admin.MAX_FAQ_BYTES, **common)  # fmt: skip
    gr.mount_gradio_app(app, widget_blocks, path="/widget", **common)  # the chat framed by the website widget
    gr.mount_gradio_app(app, customer_blocks, path="/", **common)  # last: it matches every other path
    pages.update({"/agent": agent_blocks, "/admin": admin_blocks, "/widget": widget_blocks, "": customer_blocks})
    for route in app.routes:
        if getattr(route, "app", None) is not None and hasattr(route.app, "get_blocks"):  # a mounted Gradio app
            route.app.add_exception_handler(RequestValidationError, gradio_validation_handler)
    for blocks in app.state.blocks.values():
        # Gradio checks a file named in a call (only its own uploads are accepted, blocked_paths never) only for
        # apps that "launched"; a mounted app never does, so without this any server file could be copied.
        blocks.has_launched = True
    return app


def blocked_paths(config: Any, engine: Any) -> list[str]:
    """Folders no Gradio call may read a file from: the data folder, the store's and the knowledge base's.

    Raises `ValueError` when Gradio's upload folder lies inside one of them (uploads would all be refused).
    """
    from gradio.utils import get_upload_folder

    from chatbot.settings import chatbot_home

    folders = {chatbot_home().resolve()}
    for path in (getattr(engine.store, "path", None), getattr(engine.kb, "root", None)):
        if path is not None:
            folders.add(Path(path).resolve() if Path(path).is_dir() else Path(path).resolve().parent)
    uploads = Path(get_upload_folder()).resolve()
    for folder in folders:
        if uploads.is_relative_to(folder):
            raise ValueError(f"Gradio's upload folder {uploads} lies inside the data folder {folder}: set "
                             "$GRADIO_TEMP_DIR to a folder outside $CHATBOT_HOME")  # fmt: skip
    return sorted(str(f) for f in folders)
