// The console's only way to data: POST /graphql with the admin's key as bearer token.
const KEY = "profilegate.key";

export const session = {
  key: () => sessionStorage.getItem(KEY),
  save: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(message, field = null, extra = {}) {
    super(message);
    this.field = field;
    Object.assign(this, extra);
  }
}

export async function graphql(query, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json",
      authorization: `Bearer ${session.key() ?? ""}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`the gateway answered ${response.status} without JSON`);
  }
  if (body.errors?.length) {
    const first = body.errors[0];
    throw new ApiError(first.message, first.extensions?.field ?? null, { code: first.extensions?.code });
  }
  return body.data;
}

// A union answer: its payload when it is `wanted`, else an ApiError naming the field it names.
export function expect(result, wanted) {
  if (result.__typename === wanted) return result;
  throw new ApiError(result.message ?? result.__typename, result.field ?? null, result);
}
