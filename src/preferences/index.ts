/** SHELL (owned by the notifications work, issue 3): preferences and delivery rules. */
export {};
