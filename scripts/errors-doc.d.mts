// Types of scripts/errors-doc.mjs, for the test that checks docs/errors.md (test/core/errors-doc.test.ts).
export declare const BEGIN: string;
export declare const END: string;
export declare function catalogueFiles(root: string): string[];
export declare function parseCatalogue(text: string, file: string): Array<{ code: string; meaning: string; file: string }>;
export declare function allCodes(root: string): Array<{ code: string; meaning: string; file: string }>;
export declare function table(root: string): string;
export declare function render(root: string): string;
