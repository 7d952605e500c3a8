// app.js is the page's script, imported by routes.ts as text (`with { type: "text" }`) and served as is.
declare const text: string;
export default text;
