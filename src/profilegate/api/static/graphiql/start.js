// GraphiQL on this gateway. The key an admin gave the console (/admin) in this browser tab is
// sent as the bearer token. Without one, the Headers pane opens with a placeholder to replace,
// and nothing is sent to the gateway until it holds a key: the result pane says what to do
// instead of answering UNAUTHENTICATED.
"use strict";
(function start() {
  const PLACEHOLDER = "<your API key>";
  const key = sessionStorage.getItem("profilegate.key");
  const fetcher = GraphiQL.createFetcher({ url: "/graphql", headers: key ? { Authorization: `Bearer ${key}` } : {} });
  const help = {
    errors: [{
      message: `No API key yet: replace ${PLACEHOLDER} under Headers with your key, then run the query `
        + "(and re-fetch the schema with the sidebar's reload button for the docs and completion).",
    }],
  };
  const keyIn = (headers) => Object.entries(headers ?? {}).some(([name, value]) =>
    name.toLowerCase() === "authorization" && typeof value === "string" && /^Bearer \S+$/.test(value)
    && !value.includes(PLACEHOLDER));
  const guarded = (params, options) => (key || keyIn(options?.headers) ? fetcher(params, options) : Promise.resolve(help));
  const props = { fetcher: guarded, shouldPersistHeaders: false };
  if (!key) {
    Object.assign(props, {
      defaultHeaders: JSON.stringify({ Authorization: `Bearer ${PLACEHOLDER}` }, null, 2),
      defaultEditorToolsVisibility: "headers",
      defaultQuery: "# Put your API key under Headers below, then run this query (Ctrl-Enter).\n"
        + "# Admin keys see everything; other roles see what docs/access.md grants them.\n"
        + "{\n  viewer {\n    name\n    role\n  }\n}\n",
    });
  }
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, props));
})();
