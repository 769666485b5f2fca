"""The Flask-Session peer for scripts/bench.sh: the seed tutorial's session use, with
SESSION_TYPE = "filesystem", serving the same two workloads as session-server.

    GET /              logged in: increments session["visits"] (a write every request)
    GET /api/session   logged in: reads the session (sliding expiry only)
    POST /login        user_id=...: session["user_id"] = user_id (no password: the benchmark
                       measures the session store, not bcrypt)
"""
import os
from datetime import timedelta

from flask import Flask, jsonify, request, session
from flask_session import Session

app = Flask(__name__)
app.config.update(
    SECRET_KEY="benchmark-only",
    SESSION_TYPE="filesystem",
    SESSION_FILE_DIR=os.environ["SESSION_FILE_DIR"],
    SESSION_PERMANENT=True,
    PERMANENT_SESSION_LIFETIME=timedelta(hours=1),
    SESSION_REFRESH_EACH_REQUEST=True,
)
Session(app)


@app.post("/login")
def login():
    session["user_id"] = request.form["user_id"]
    return "", 303, {"Location": "/"}


@app.get("/")
def index():
    if "user_id" not in session:
        return "anonymous", 200
    session["visits"] = session.get("visits", 0) + 1
    return f"<p id='visits'>{session['visits']}</p>", 200


@app.get("/api/session")
def api_session():
    if "user_id" not in session:
        return jsonify(error="not logged in"), 401
    return jsonify(user_id=session["user_id"], visits=session.get("visits", 0))
