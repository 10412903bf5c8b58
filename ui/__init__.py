"""The web app: Gradio pages (customer chat, agent console, admin) and the HTTP API on one FastAPI app."""
