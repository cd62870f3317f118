import { type FormEvent, useState } from "react";

/** Asks for a token when the page was not opened with #token=... */
export function SignIn({ page, onToken, notice }: { page: "center" | "analytics"; onToken(token: string): void; notice?: string | undefined }) {
  const [value, setValue] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const token = value.trim();
    if (token) onToken(token);
  };
  return (
    <form className="signin" onSubmit={submit} data-testid="signin">
      <h2>Sign in</h2>
      {notice && (
        <p className="signin-notice" role="alert">
          {notice}
        </p>
      )}
      <p>
        {page === "analytics"
          ? "The dashboard needs an admin token (a JWT with role \"admin\" or an API key)."
          : "Paste a provider token (a JWT whose sub is your user id)."}{" "}
        <code>npm start</code> prints demo tokens and links that sign in directly.
      </p>
      <label htmlFor="token">Token</label>
      <textarea id="token" rows={4} value={value} onChange={(e) => setValue(e.target.value)} autoComplete="off" spellCheck={false} />
      <button type="submit" disabled={value.trim() === ""}>
        Sign in
      </button>
    </form>
  );
}
