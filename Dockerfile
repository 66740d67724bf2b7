# Stage 1: the browser pages' Socket.IO client, built from package-lock.json (node_modules is not in the context).
FROM node:22-slim AS browser-assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev --loglevel=error

# Stage 2: the service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    FLASK_APP=wsgi \
    PAWMANITY_CONFIG=production \
    PAWMANITY_INSTANCE_DIR=/app/instance

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
COPY --from=browser-assets /build/node_modules/socket.io-client/dist /app/node_modules/socket.io-client/dist
# Never run as root; only the instance (models, document store) and upload folders are writable.
RUN useradd --create-home --uid 10001 pawmanity \
    && mkdir -p /app/instance/models /app/uploads \
    && chown -R pawmanity:pawmanity /app/instance /app/uploads
USER pawmanity

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=2)"

# One gevent worker per container: Socket.IO needs sticky sessions, so scale with more containers behind the
# Redis message queue, not with more workers. No --preload: the worker must monkey-patch before the app loads.
CMD ["sh", "-c", "flask db upgrade && exec gunicorn -k gevent -w 1 -b 0.0.0.0:8000 wsgi:app"]
