# Firebreak container image: slim, non-root, migrations then serve.
#   docker build -t firebreak .
#   docker run -p 3000:3000 -v firebreak-data:/data \
#     -e SLACK_BOT_TOKEN -e SLACK_SIGNING_SECRET firebreak
# Environment (see README "Configuration"): DATABASE_URL (default SQLite in /data),
# SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN (Socket Mode), SLACK_API_URL, PORT,
# FIREBREAK_POLICY_FILE, FIREBREAK_LOG_LEVEL, FIREBREAK_LOG_FORMAT.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/firebreak
COPY pyproject.toml README.md ./
COPY bot ./bot
# bot/starter_runbooks links here: the wheel ships the starter runbooks (firebreak demo).
COPY runbooks ./runbooks
RUN /opt/firebreak/bin/pip install --no-cache-dir .

FROM python:3.11-slim
ENV PATH=/opt/firebreak/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FIREBREAK_HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=sqlite:////data/firebreak.db \
    FIREBREAK_LOG_FORMAT=json
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin firebreak \
    && mkdir -p /app/postmortems /data \
    && chown firebreak /data /app/postmortems
COPY --from=build /opt/firebreak /opt/firebreak
WORKDIR /app
COPY firebreak.toml ./firebreak.toml
COPY runbooks ./runbooks
USER 10001
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
ENTRYPOINT ["firebreak"]
CMD ["serve", "--migrate"]
