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

// A decimal the API must read as a JSON number with its digits as written (10.0 stays a
// decimal, where JavaScript's number would send 10, an integer).
const DECIMAL_MARK = "\u{E000}decimal:";
export const decimalNumber = (text) => ({ toJSON: () => `${DECIMAL_MARK}${text}` });
const DECIMALS = new RegExp(`"${DECIMAL_MARK}(-?\\d+(?:\\.\\d+)?)"`, "gu");
const requestBody = (query, variables) => JSON.stringify({ query, variables }).replace(DECIMALS, "$1");

export async function graphql(query, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json",
      authorization: `Bearer ${session.key() ?? ""}`,
    },
    body: requestBody(query, variables),
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
