// GraphiQL on this gateway. The key an admin gave the console (/admin) in this browser tab is
// sent as the bearer token; without one, put {"Authorization": "Bearer <key>"} in Headers.
"use strict";
(function start() {
  const key = sessionStorage.getItem("profilegate.key");
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  const fetcher = GraphiQL.createFetcher({ url: "/graphql", headers });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, { fetcher, shouldPersistHeaders: false }));
})();
