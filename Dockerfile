# kg-server: the API server (and, with KG_BUS_URL=kafka://..., `kg worker`).
# Models ship inside PyPI packages, so the image needs no network at run time.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY graphql_schema ./graphql_schema
COPY ops/graphiql ./ops/graphiql
RUN python -m venv /opt/kg \
 && /opt/kg/bin/pip install --no-cache-dir . \
 && /opt/kg/bin/python ops/graphiql/build.py \
 && cp -r app/static /opt/kg/static

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 kg
COPY --from=build /opt/kg /opt/kg
# The installed package looks for its GraphiQL assets beside itself.
RUN cp -r /opt/kg/static "$(/opt/kg/bin/python -c 'import app, os; print(os.path.dirname(app.__file__))')/static"
USER kg
WORKDIR /home/kg
ENV PATH=/opt/kg/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    KG_HOST=0.0.0.0 \
    KG_DATA_DIR=/home/kg/data \
    XDG_CACHE_HOME=/home/kg/data/cache
EXPOSE 8000
VOLUME ["/home/kg/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["kg", "serve"]
