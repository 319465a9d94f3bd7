import { z } from "zod";

/**
 * A WordPiece tokenizer (BERT's): lower-cased words split on whitespace and punctuation, each word
 * encoded greedily by the longest vocabulary entry (`##` marks a piece inside a word), and a word
 * with no encoding, or longer than `maxWordChars`, becomes `[UNK]`. Its JSON form (the vocabulary
 * in id order) is what an export saves in `flock.json`; `tokenizer-train.ts` learns one.
 * @module
 */

/** The special tokens, at ids 0-4 of every vocabulary. `[PAD]` must be 0: attention masks id 0. */
export const SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] as const;
/** Ids of the special tokens. */
export const PAD_ID = 0;
export const UNK_ID = 1;
export const CLS_ID = 2;
export const SEP_ID = 3;
export const MASK_ID = 4;

/** Largest vocabulary (the transformer's embedding bound). */
export const MAX_VOCABULARY = 65_536;
/** Longest word encoded piece by piece (BERT's limit); a longer one is `[UNK]`. */
export const MAX_WORD_CHARS = 100;
/** Longest vocabulary entry, `##` included. */
const MAX_TOKEN_CHARS = MAX_WORD_CHARS + 2;

/** The JSON form of a {@link WordPieceTokenizer}. */
export const TokenizerJson = z
  .strictObject({
    type: z.literal("wordpiece"),
    version: z.literal(1),
    lowercase: z.boolean(),
    maxWordChars: z.number().int().min(1).max(MAX_WORD_CHARS),
    /** Tokens in id order; the special tokens first. */
    vocab: z.array(z.string().min(1).max(MAX_TOKEN_CHARS)).min(SPECIAL_TOKENS.length).max(MAX_VOCABULARY),
  })
  .superRefine((t, ctx) => {
    if (SPECIAL_TOKENS.some((s, i) => t.vocab[i] !== s))
      ctx.addIssue({
        code: "custom",
        message: `vocab must start with ${SPECIAL_TOKENS.join(" ")}`,
        path: ["vocab"],
      });
    if (new Set(t.vocab).size !== t.vocab.length)
      ctx.addIssue({ code: "custom", message: "vocab has duplicate tokens", path: ["vocab"] });
  });
/** The JSON form of a tokenizer. */
export type TokenizerJson = z.infer<typeof TokenizerJson>;

/** A tokenizer JSON that is not valid (a saved file is the user's; a spec's comes from the wire). */
export class InvalidTokenizerError extends Error {
  override name = "InvalidTokenizerError";
}

/** Punctuation and symbols are words of their own (BERT's basic tokenizer). */
const WORDS = /[\p{L}\p{N}\p{M}]+|[^\s\p{L}\p{N}\p{M}]/gu;

/**
 * The words of a text as the tokenizer and its trainer see them: NFC-normalised, lower-cased
 * when `lowercase`, split into runs of letters/digits/marks and single other characters.
 */
export function splitWords(text: string, lowercase: boolean): string[] {
  const normal = text.normalize("NFC");
  return (lowercase ? normal.toLowerCase() : normal).match(WORDS) ?? [];
}

/** A WordPiece vocabulary with encode and decode. Pure: the same vocabulary encodes the same everywhere. */
export class WordPieceTokenizer {
  private readonly ids = new Map<string, number>();

  private constructor(private readonly json: TokenizerJson) {
    json.vocab.forEach((token, id) => this.ids.set(token, id));
  }

  /** A tokenizer from its JSON form; throws {@link InvalidTokenizerError} saying what is wrong. */
  static fromJSON(json: unknown): WordPieceTokenizer {
    const parsed = TokenizerJson.safeParse(json);
    if (!parsed.success)
      throw new InvalidTokenizerError(`invalid tokenizer: ${z.prettifyError(parsed.error)}`);
    return new WordPieceTokenizer(parsed.data);
  }

  /** The JSON form (a copy), as saved in `flock.json`. */
  toJSON(): TokenizerJson {
    return { ...this.json, vocab: [...this.json.vocab] };
  }

  /** Number of tokens, specials included: the model's `vocabulary`. */
  get size(): number {
    return this.json.vocab.length;
  }

  /** The token of an id, or `[UNK]` for an id out of range. */
  token(id: number): string {
    return this.json.vocab[id] ?? "[UNK]";
  }

  /**
   * The ids of a text's tokens, without special tokens; with `limit`, only the first `limit` (the
   * words past them are not even split: an email body of 100 KB encodes for 64 ids in microseconds).
   */
  tokenize(text: string, limit = Infinity): number[] {
    const out: number[] = [];
    const normal = text.normalize("NFC");
    for (const match of (this.json.lowercase ? normal.toLowerCase() : normal).matchAll(WORDS)) {
      if (out.length >= limit) break;
      out.push(...this.encodeWord(match[0]));
    }
    return out.length > limit ? out.slice(0, limit) : out;
  }

  /**
   * A model input of exactly `maxLen` ids: `[CLS]`, the text's first `maxLen − 2` tokens,
   * `[SEP]`, then `[PAD]`s. `maxLen` must be at least 2.
   */
  encode(text: string, maxLen: number): Int32Array {
    if (!Number.isInteger(maxLen) || maxLen < 2)
      throw new RangeError(`maxLen must be an integer ≥ 2, got ${maxLen}`);
    const tokens = this.tokenize(text, maxLen - 2);
    const out = new Int32Array(maxLen); // zero-filled: [PAD]
    out[0] = CLS_ID;
    out.set(tokens, 1);
    out[tokens.length + 1] = SEP_ID;
    return out;
  }

  /** The text of ids: special tokens dropped, `##` pieces joined to the piece before. */
  decode(ids: ArrayLike<number>): string {
    let text = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] ?? PAD_ID;
      if (id !== UNK_ID && id >= 0 && id < SPECIAL_TOKENS.length) continue;
      const token = this.token(id);
      if (token.startsWith("##") && text !== "") text += token.slice(2);
      else text += (text === "" ? "" : " ") + token;
    }
    return text;
  }

  /** Greedy longest-match-first (BERT's): the whole word is `[UNK]` when a piece has no match. */
  private encodeWord(word: string): number[] {
    const chars = Array.from(word);
    if (chars.length > this.json.maxWordChars) return [UNK_ID];
    const pieces: number[] = [];
    let start = 0;
    while (start < chars.length) {
      let id: number | undefined;
      let end = chars.length;
      for (; end > start; end--) {
        const piece = (start > 0 ? "##" : "") + chars.slice(start, end).join("");
        id = this.ids.get(piece);
        if (id !== undefined) break;
      }
      if (id === undefined) return [UNK_ID];
      pieces.push(id);
      start = end;
    }
    return pieces;
  }
}
