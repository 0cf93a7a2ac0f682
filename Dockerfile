# policy-ledger: the HTTP service. Data (SQLite file and the log key) lives in /data;
# set LEDGER_DATABASE_URL=postgresql://… to use PostgreSQL instead.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LEDGER_HOST=0.0.0.0 \
    LEDGER_PORT=8080 \
    LEDGER_DATABASE_URL=sqlite:////data/policy-ledger.db \
    LEDGER_SIGNING_KEY_FILE=/data/policy-ledger.key

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ./ledger
COPY api ./api
COPY schemas ./schemas
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data ledger \
    && mkdir -p /data && chown ledger /data

USER ledger
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status != 200)"]
CMD ["policy-ledger", "serve"]
