// style.css is imported by routes.ts as text (`with { type: "text" }`) and served as is.
declare module "*.css" {
  const text: string;
  export default text;
}
