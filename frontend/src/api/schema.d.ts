/**
 * Generated from src/api/openapi.json by `npm run gen:api` (openapi-typescript): do not edit.
 * src/api/types.ts names these types for the app.
 */

export interface paths {
    "/delete_session": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["delete_session"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/diff_sessions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["diff_sessions"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/eval_lens": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The last evaluation made with the model in service, or `null` when
         *     there is none yet (an empty state, not an error: the web app asks each
         *     time its Lens quality view opens).
         */
        get: operations["last_eval"];
        put?: never;
        /**
         * Evaluate the lenses of the model in service over a corpus: per
         *     block-output row, KL to the model's output, cross-entropy of the next
         *     token, entropy and top-1 agreement, for the logit lens and the attached
         *     tuned lens. The corpus is text, or sampled from the model. Progress goes
         *     to /events as `sampling` (tokens) then `documents` run events; the
         *     evaluation stops when its client goes away.
         */
        post: operations["eval_lens"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/eval_sae": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The last SAE evaluation made with the model in service, or `null` when
         *     there is none yet (the web app asks each time its SAE quality view
         *     opens).
         */
        get: operations["last_sae_eval"];
        put?: never;
        /**
         * Measure attached SAEs over a corpus (text, or sampled from the model):
         *     next-token cross-entropy with each spliced in at its hook against the
         *     clean model's (ΔCE) and the hook zeroed, KL from the clean output,
         *     explained variance, MSE, mean L0 and dead features. Progress goes to
         *     /events as `sampling` then `documents` run events; the evaluation stops
         *     when its client goes away.
         */
        post: operations["eval_sae"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Server-Sent Events: the /model_status body now and at every change
         *     (`status` events), and the progress of runs (`run` events).
         */
        get: operations["events"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/fit_jlens": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The kept sums of a stopped fit of the model in service, or `null`. */
        get: operations["kept_fit"];
        put?: never;
        /**
         * Fit a Jacobian lens on the model in service over a corpus (text, or
         *     sampled from the model), save it under saved_states/ and attach it. As
         *     /eval_lens is: admitted and watched (`fitting` run events on /events:
         *     pieces of the fit done of all), stopped when its client goes away. A
         *     stopped fit's sums are kept (GET /fit_jlens): a fit with `resume: true`
         *     continues them.
         */
        post: operations["fit_jlens"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/generate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Greedy generation with the lens: the /inference body over the prompt and
         *     the written tokens, plus `generated_ids`, `generated_text`,
         *     `prompt_tokens`, `stopped_at_eos` and, with `compare`,
         *     `baseline_generation` (what the model writes without them, and the
         *     first step where the two differ). Interventions act at every step;
         *     their positions count over the whole sequence (negative ones back from
         *     the prompt's end). With `stream: true` the body is newline-delimited
         *     JSON: a `step` line per pass (the token chosen and the lens columns of
         *     the positions it ran), then `done` with the whole body (or `error`).
         *     Progress also goes to /events (`generating`: tokens written); the
         *     generation stops when its client goes away.
         */
        post: operations["generate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/inference": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["inference"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/inference_batch": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Several /inference runs in one request, one answer each: the prompts go
         *     through the model as padded batches, each under its own interventions.
         */
        post: operations["inference_batch"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/lens_vector": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * What a token's Jacobian-lens vector says at each layer the attached lens
         *     covers: v = J_ℓᵀ W_U[:, token] read through the model's own head (its
         *     top tokens), and its norm. The direction `jlens_steer` pushes along.
         */
        post: operations["lens_vector"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/load_lens": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Attach a lens to the model in service: a tuned lens (`/inference
         *     {"lens": "tuned"}`) or a Jacobian lens (`{"lens": "jacobian"}`, and the
         *     `jlens_*` interventions). A lens of another width or depth is a 400
         *     naming both sizes; one made for another model is attached with a
         *     warning (in the answer's `tuned_lens_warning` or `jacobian_lens.warning`).
         */
        post: operations["load_lens"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/load_model": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Load a model and put it in service; the previous model serves until the
         *     new one is ready, and stays if the load fails.
         */
        post: operations["load_model"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/load_sae": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Attach sparse autoencoders to the model in service, all of them or, when
         *     one cannot be read or does not fit (its hook is not the model's, its
         *     width is not the hook's: both sizes named), none. Each is named by its
         *     folder unless given a name; one named as an attached one replaces it.
         *     `/inference {"sae": true}` then reads their features, and the `sae_*`
         *     interventions act through them.
         */
        post: operations["load_sae"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/load_session": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["load_session"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/model_status": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["model_status"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/models": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["list_models"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/patch": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Activation patching: the corrupted text is run with the hook's
         *     activation at one layer and one position taken from the clean text's
         *     run, for every layer and every position asked, and the metric read at
         *     the last position each time. Progress goes to /events as `patching`
         *     run events (patched runs done of all); the sweep stops when its client
         *     goes away.
         */
        post: operations["patch"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/runs/{run_id}/attention": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The attention of a recent run, fetched when a view needs it, so
         *     /inference can answer with only what the first view shows.
         */
        get: operations["run_attention"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/sae_feature_corpus": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Where a feature fires over a corpus (text, or sampled from the model):
         *     how often, how strongly at most, and its strongest contexts with the
         *     token marked. Progress goes to /events as `sampling` then `documents`
         *     run events; the scan stops when its client goes away.
         */
        post: operations["sae_feature_corpus"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/sae_features": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * What features of an attached SAE say: each one's top and bottom tokens
         *     by its decoder row read through the unembedding (`W_dec[f]·W_U`), and,
         *     with a kept run's `run_id`, its activation at every position of that
         *     run (what `logitlens sae-features --json` prints, without them).
         */
        post: operations["sae_features"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/save_grid_visualization": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["save_grid_visualization"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/save_state": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["save_state"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/save_visualization": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["save_visualization"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/sessions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["sessions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/tokenize": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * The model in service's tokens of a text, as /inference would run it:
         *     for showing token counts and checking that a string is one token.
         */
        post: operations["tokenize"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/unload_sae": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Take attached SAEs off the model in service, all those named or, when
         *     one is not attached, none.
         */
        post: operations["unload_sae"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        Analysis: {
            /** @description `[row][position]` L2 norm of the residual stream state the row shows. */
            resid_norm: number[][];
            /**
             * @description `[row][position]` cosine similarity to the previous row's state
             *     (null for the first row, or where either state is all zeros).
             */
            cos_prev: (number | null)[][];
            /** @description `[row][position]` cosine similarity to the final row's state. */
            cos_final: (number | null)[][];
            /** @description `[layer][position]` L2 norm of what attention adds. */
            attn_out_norm: number[][];
            /** @description `[layer][position]` L2 norm of what the MLP adds. */
            mlp_out_norm: number[][];
        };
        /** @description The app that saved it. */
        AppInfo: {
            name: string;
            version: string;
        };
        /** @description A Jacobian lens attached to the model in service. */
        AttachedJacobianLens: {
            /**
             * @description The file it was read from (empty for one fitted by this server and
             *     not yet saved).
             */
            path: string;
            /**
             * Format: int64
             * @description Prompts its matrices average over.
             */
            n_prompts: number;
            /** @description The block outputs it transports ("Layer ℓ" rows). */
            source_layers: number[];
            /** @description Why it may be for another model (its metadata names another). */
            warning?: string | null;
        };
        /** @description A sparse autoencoder attached to the model in service. */
        AttachedSae: {
            /** @description What interventions and `sae` name it by. */
            name: string;
            /** @description Where it was read from. */
            source: string;
            /** @description The hook it reads. */
            hook: string;
            /** @description standard, jumprelu or topk. */
            architecture: string;
            d_in: number;
            d_sae: number;
            /** @description A topk SAE's k. */
            k?: number | null;
            /** @description Its weights' dtype as stored. */
            dtype: string;
            /**
             * Format: int64
             * @description Memory it holds.
             */
            bytes: number;
            apply_b_dec_to_input: boolean;
            normalize_activations: string;
            /**
             * @description Whether its input is each position's activation minus its mean
             *     (trained on TransformerLens's centred writing weights).
             */
            centered: boolean;
            /** @description What was said when it was attached (a scaling factor missing...). */
            notes: string[];
        };
        /**
         * @description The shares of one token's logit at one position: `embed + Σattn + Σmlp
         *     + rest = logit`, and `Σ_h heads[l][h] = attn[l]` minus the attention
         *     output projection's bias. Each share is the token's unembedding row
         *     dotted with the final norm applied to that part of the final residual
         *     state, the norm's scale frozen at that state. (The answer's
         *     `attribution` field, as it is.)
         */
        AttributionAnswer: {
            /** Format: int32 */
            token_id: number;
            /** @description The token as `decode([token_id])` gives it. */
            token: string;
            /** @description The position, resolved (non-negative). */
            position: number;
            /**
             * Format: double
             * @description The logit itself, computed in f64 from the final state.
             */
            logit: number;
            /**
             * Format: double
             * @description The token embedding's share.
             */
            embed: number;
            /** @description Per layer: the attention output's share (its bias included). */
            attn: number[];
            /** @description Per layer: the MLP output's share. */
            mlp: number[];
            /** @description `[layer][head]`: each head's share (without the output bias). */
            heads: number[][];
            /**
             * Format: double
             * @description What is not a share of the embedding, attention or MLP: the sum of
             *     `rest_parts`; 0 for Llama and Qwen3 without interventions.
             */
            rest: number;
            /**
             * @description The rest by name: pos_embed (GPT-2), final_norm_bias (LayerNorm
             *     families), lm_head_bias (Phi), final_softcap (Gemma 2),
             *     interventions (the run's stream interventions).
             */
            rest_parts: {
                [key: string]: number;
            };
        };
        /** @description Which logit to attribute. */
        AttributionQuery: {
            /** @description A string that is exactly one token (encoded without BOS), or an id. */
            token: components["schemas"]["TrackToken"];
            /**
             * Format: int64
             * @description The position; negative counts from the end (default -1, the last).
             */
            position?: number;
        };
        /**
         * @description A backend as the API names it. `transformerlens` (the original's name)
         *     is the hooked backend, and is echoed back as given.
         * @enum {string}
         */
        Backend: "custom" | "hooked" | "transformerlens";
        /** @description What the model writes without the interventions (with `compare`). */
        BaselineAnswer: {
            generated_ids: number[];
            /** @description Each token as `decode([id])` gives it. */
            generated_tokens: string[];
            generated_text: string;
            /**
             * @description The first written step at which the two continuations differ; null
             *     when they are the same.
             */
            first_difference?: number | null;
        };
        /**
         * @description A token an operation names: a string that is exactly one token, or a
         *     token id.
         */
        ConceptToken: string | number;
        /** @description The body of POST /delete_session. */
        DeleteSessionResponse: {
            /** @description Always "deleted". */
            status: string;
            session_id: string;
        };
        /** @description How a cell changed from its baseline. */
        DiffCell: {
            /**
             * Format: int32
             * @description The baseline's top-1 token and its probability there.
             */
            baseline_id: number;
            /** Format: double */
            baseline_prob: number;
            /**
             * Format: double
             * @description That token's probability here.
             */
            prob: number;
            /**
             * Format: int32
             * @description The top-1 token here.
             */
            top_id: number;
            /**
             * Format: double
             * @description `prob - baseline_prob`.
             */
            delta_prob: number;
            /**
             * Format: int32
             * @description The baseline top-1's rank here (0 = still top).
             */
            rank: number;
            /**
             * Format: double
             * @description KL(baseline || here), nats.
             */
            kl: number;
        };
        DiffSessionsRequest: {
            /** @description The baseline session's id (as GET /sessions lists it). */
            a: string;
            /** @description The session compared with it. */
            b: string;
        };
        /** @description The body of POST /diff_sessions. */
        DiffSessionsResponse: {
            a: components["schemas"]["DiffSide"];
            b: components["schemas"]["DiffSide"];
            /** @description The tokens both sessions ran. */
            input_tokens?: string[] | null;
            layer_names: string[];
            /** @description Each session's rows through its own model's head. */
            a_logit_lens: components["schemas"]["LensRow"][];
            b_logit_lens: components["schemas"]["LensRow"][];
            /** @description `[row][position]`, with `a` as the baseline. */
            diff: components["schemas"]["DiffCell"][][];
        };
        /** @description One side of a session diff. */
        DiffSide: {
            session_id: string;
            model_name?: string | null;
            lens_type?: string | null;
        };
        /** @description The body of `POST /eval_lens`. */
        EvalLensRequest: {
            /**
             * @description The corpus: one document per line (blank lines skipped), each
             *     tokenized as /inference does without the chat template.
             */
            corpus?: string | null;
            /**
             * @description Instead of `corpus`: this many documents of `max_tokens` ids sampled
             *     from the model itself (temperature 1, from BOS or its eos token).
             */
            sample?: number | null;
            /**
             * Format: int64
             * @description Seed of a sampled corpus (default 0).
             */
            seed?: number;
            /** @description Each document's first ids (default 128). */
            max_tokens?: number;
        };
        /**
         * @description An evaluation and what it was made of: what `POST /eval_lens` and
         *     `logitlens eval-lens --json` answer.
         */
        EvalReport: components["schemas"]["Evaluation"] & {
            model_name: string;
            /** @description The tuned lens's folder, when one was attached (then `tuned` is set). */
            tuned_lens?: string | null;
            /** @description The Jacobian lens's file, when one was attached (then `jacobian` is set). */
            jacobian_lens?: string | null;
            /** @description Documents evaluated. */
            documents: number;
            /**
             * Format: int64
             * @description The seed, when the documents were sampled from the model.
             */
            sample_seed?: number | null;
            max_tokens: number;
        };
        /** @description The body of `POST /eval_sae`. */
        EvalSaeQuery: {
            /** @description The attached SAEs to measure (default: all). */
            saes?: string[] | null;
            /** @description The corpus: one document per line (blank lines skipped). */
            corpus?: string | null;
            /** @description Instead of `corpus`: this many documents sampled from the model. */
            sample?: number | null;
            /**
             * Format: int64
             * @description Seed of a sampled corpus (default 0).
             */
            seed?: number;
            /** @description Each document's first ids (default 128). */
            max_tokens?: number;
            /**
             * @description Special-token positions keep their activation in the spliced run
             *     (default true); they are never counted.
             */
            exclude_special?: boolean;
        };
        /** @description What `logitlens eval-lens --json` prints. */
        Evaluation: {
            layers: string[];
            /** @description Positions counted (every position of every document). */
            tokens: number;
            logit: components["schemas"]["LensMetrics"];
            tuned?: null | components["schemas"]["LensMetrics"];
            jacobian?: null | components["schemas"]["LensMetrics"];
        };
        /** @description One place the feature fires. */
        FeatureContext: {
            /** @description Which document (0-based, in corpus order) and position in it. */
            document: number;
            position: number;
            /** Format: float */
            act: number;
            /** @description The tokens around it, decoded one by one... */
            tokens: string[];
            /** @description ...and the index in `tokens` of the one it fires on. */
            highlight: number;
        };
        /**
         * @description What a feature says: the tokens its decoder row promotes most
         *     (`top_tokens`, descending) and least (`bottom_tokens`, ascending),
         *     by `W_dec[f] · W_Uᵀ` (no final norm, as SAELens's logit lens of a
         *     feature reads it).
         */
        FeatureTokens: {
            /** Format: int32 */
            id: number;
            /**
             * Format: float
             * @description ‖W_dec[f]‖.
             */
            decoder_norm: number;
            top_tokens: components["schemas"]["TokenValue"][];
            bottom_tokens: components["schemas"]["TokenValue"][];
        };
        /**
         * @description A fit this server keeps: the sums of a stopped one, which a fit with
         *     `resume` continues.
         */
        FitCheckpoint: {
            /** @description Prompts in its sums. */
            n_done: number;
            /** @description Prompts the stopped fit was to consider in all. */
            total: number;
            /** @description The corpus index it continues at. */
            next: number;
            max_seq_len: number;
            skip_first: number;
            dim_batch: number;
            /** @description What its corpus was. */
            corpus: string;
        };
        /** @description The body of `POST /fit_jlens`. */
        FitJlensQuery: {
            /** @description The prompts: one document per line (blank lines skipped). */
            corpus?: string | null;
            /** @description Instead of `corpus`: this many documents sampled from the model. */
            sample?: number | null;
            /**
             * Format: int64
             * @description Seed of a sampled corpus (default 0).
             */
            seed?: number;
            /** @description Fit on the corpus's first this many documents (default: all). */
            max_prompts?: number | null;
            /** @description Each prompt's first ids (default 128). */
            max_seq_len?: number;
            /** @description Leading positions left out of each prompt's average (default 16). */
            skip_first?: number;
            /** @description Output dimensions per backward pass (default 8). */
            dim_batch?: number;
            /**
             * @description Continue the fit this server keeps from a stopped one (GET
             *     /fit_jlens) instead of starting afresh; the same corpus and settings.
             */
            resume?: boolean;
        };
        /** @description What a fit answers. */
        FitJlensResponse: {
            /**
             * Format: int64
             * @description Prompts in the lens (a resumed fit's earlier ones included).
             */
            n_prompts: number;
            /** @description Prompts skipped this time: too short for a valid position. */
            skipped: number;
            /** Format: double */
            seconds: number;
            /** @description Where it was saved: `saved_states/<time>_jlens_<model>.safetensors`. */
            saved: string;
            /** @description The lens, now attached. */
            jacobian_lens: components["schemas"]["AttachedJacobianLens"];
        };
        /** @enum {string} */
        Format: "json" | "f16";
        /** @description One line of a streamed `POST /generate`. */
        GenerateEvent: {
            index: number;
            /** Format: int32 */
            token_id?: number | null;
            token?: string | null;
            start: number;
            tokens: string[];
            columns: components["schemas"]["LensRow"][];
            /** @enum {string} */
            type: "step";
        } | {
            /** Format: int64 */
            run_id: number;
            response: components["schemas"]["GenerateResponse"];
            /** @enum {string} */
            type: "done";
        } | {
            detail: string;
            /** @enum {string} */
            type: "error";
        };
        /**
         * @description The body of `POST /generate`: /inference's fields (the text is the
         *     prompt; interventions act at every step, their positions over the whole
         *     sequence) and how far to write.
         */
        GenerateQuery: components["schemas"]["InferenceRequest"] & {
            /** @description New tokens at most, 1 to 256 (greedy decoding). */
            max_new_tokens: number;
            /** @description Stop after the model's eos token, which is kept (default true). */
            stop_at_eos?: boolean;
            /**
             * @description Answer with newline-delimited JSON as the tokens are written: a
             *     `step` line per pass, then a `done` line with the whole body.
             */
            stream?: boolean;
        };
        /**
         * @description The body `POST /generate` answers with: the /inference body over the
         *     prompt and the written tokens (`input_tokens`, `logit_lens` ... cover
         *     both), and what was written.
         */
        GenerateResponse: components["schemas"]["InferenceResponse"] & components["schemas"]["Written"];
        GridVisualizationRequest: {
            /** @description `[panel][query][key]` */
            grid_data: number[][][];
            tokens: string[];
            title: string;
            /** @description "layer_grid" titles panels "Layer i"; anything else "Head i". */
            grid_type: string;
        };
        /**
         * @description The body of `POST /inference_batch`: several `/inference` bodies, run
         *     in one request.
         */
        InferenceBatchRequest: {
            /** @description Each prompt's request, as `/inference` takes it. */
            requests: components["schemas"]["InferenceRequest"][];
        };
        /** @description The answer of `POST /inference_batch`. */
        InferenceBatchResponse: {
            /** @description One `/inference` answer per request, in request order. */
            results: components["schemas"]["InferenceResponse"][];
            /**
             * @description How the prompts went through the model: the requests (indices) each
             *     pass carried. Prompts go through together, padded to the longest of
             *     their pass, each under its own interventions (with `compare`, its
             *     baseline beside it); those returning attention in passes of their
             *     own; a prompt that blocks attention or acts at `hook_pos_embed`
             *     alone.
             */
            passes: number[][];
        };
        /** @description The body of `POST /inference`. */
        InferenceRequest: {
            text: string;
            /**
             * @description Operations by key (`layer_3_output`, `blocks.3.hook_resid_post`...),
             *     applied in request order.
             */
            interventions?: {
                [key: string]: components["schemas"]["InterventionConfig"][];
            };
            lens_type?: components["schemas"]["LensType"];
            apply_chat_template?: boolean;
            return_attention?: boolean;
            attention_format?: null | components["schemas"]["Format"];
            /** @description Only these layers' attention (default: every layer). */
            attention_layers?: number[] | null;
            attention_reduce?: null | components["schemas"]["Reduce"];
            /** @description Also run without interventions: `baseline_logit_lens` and `diff`. */
            compare?: boolean;
            /**
             * @description Tokens (single-token strings, or ids) whose probability and rank
             *     every cell reports in `tracked`.
             *     Kept as JSON values: what is not a string or an id is refused with
             *     the reason, by the run's checks.
             */
            track_tokens?: components["schemas"]["TrackToken"][] | null;
            /** @description Each cell's entropy (nats) in `entropy`. */
            entropy?: boolean;
            /** @description Norms and cosines of the captured states in `analysis`. */
            analysis?: boolean;
            /**
             * @description `tuned`: draw the block-output rows with the tuned lens attached to
             *     the model (POST /load_lens); `jacobian`: with the Jacobian lens
             *     attached to it (the rows it covers transported, named in
             *     `transported_rows`); default `logit`.
             */
            lens?: components["schemas"]["Lens"];
            attribution?: null | components["schemas"]["AttributionQuery"];
            sae?: null | components["schemas"]["SaeSelection"];
            /**
             * @description Features listed per position and SAE, by activation (default 8; 0:
             *     every active feature).
             */
            sae_top_k?: number | null;
        };
        /** @description The body `POST /inference` answers with. */
        InferenceResponse: {
            text: string;
            input_tokens: string[];
            logit_lens: components["schemas"]["LensRow"][];
            /** @description `[layer][head][query][key]`, only when asked for. */
            attention?: number[][][][] | null;
            attention_f16?: null | components["schemas"]["Packed"];
            /** @description With `compare`: the same text without interventions. */
            baseline_logit_lens?: components["schemas"]["LensRow"][] | null;
            /** @description With `compare`: `[row][position]` how each cell changed. */
            diff?: components["schemas"]["DiffCell"][][] | null;
            /** @description With `track_tokens`: `[row][position][k]`. */
            tracked?: components["schemas"]["TrackedCell"][][][] | null;
            /** @description With `entropy`: `[row][position]` nats. */
            entropy?: number[][] | null;
            analysis?: null | components["schemas"]["Analysis"];
            /** @description One per applied operation, in the order applied. */
            receipts?: components["schemas"]["Receipt"][];
            attribution?: null | components["schemas"]["AttributionAnswer"];
            /**
             * @description With `lens: jacobian`: the rows the lens's matrices transported
             *     (`Layer 0`.. for the layers it covers); the other rows (the
             *     embeddings, the final output) are read as the logit lens reads them.
             */
            transported_rows?: string[] | null;
            /**
             * @description With `sae`: each SAE's features at every position (its strongest
             *     `sae_top_k`), L0 and reconstruction error.
             */
            sae?: components["schemas"]["SaeReadout"][] | null;
        };
        /**
         * @description One intervention as a request states it (the original's
         *     `InterventionConfig`): an operation `type` and the fields it uses.
         *     [`plan`] checks every field against the model and the input.
         */
        InterventionConfig: {
            /**
             * @description zero, scale, add, block_attention, jlens_steer, jlens_ablate,
             *     jlens_swap, sae_splice, sae_ablate, sae_clamp or sae_steer.
             */
            type: string;
            /**
             * Format: double
             * @description The factor of `scale`; the feature's activation of `sae_clamp`; the
             *     coefficient of `sae_steer`.
             */
            value?: number | null;
            /** @description What `add` adds: hidden-size numbers. */
            vector?: number[] | null;
            /**
             * Format: int64
             * @description One position (negative counts from the end); all positions when absent.
             */
            token_index?: number | null;
            /** @description block_attention: the keys that can no longer be read. */
            source_tokens?: number[] | null;
            /** @description block_attention: the queries that can no longer read them. */
            target_tokens?: number[] | null;
            /** @description Apply at every layer (a J-lens operation: every layer the lens covers). */
            all_layers?: boolean | null;
            token?: null | components["schemas"]["ConceptToken"];
            /** @description jlens_ablate: the tokens whose lens vectors' span is projected out. */
            tokens?: components["schemas"]["ConceptToken"][] | null;
            source?: null | components["schemas"]["ConceptToken"];
            target?: null | components["schemas"]["ConceptToken"];
            /**
             * Format: double
             * @description jlens_steer and jlens_swap: the strength (steering adds alpha times
             *     the median norm of the stream; a swap of alpha 1 exchanges the two
             *     coordinates, 2 is the paper's double strength).
             */
            alpha?: number | null;
            /** @description sae_*: the name of the attached SAE it works through. */
            sae?: string | null;
            /**
             * Format: int32
             * @description sae_ablate, sae_clamp, sae_steer: the feature.
             */
            feature?: number | null;
        };
        /**
         * @description Which lens draws the rows: the logit lens, or the tuned or Jacobian
         *     lens attached to the model.
         * @enum {string}
         */
        Lens: "logit" | "tuned" | "jacobian";
        /** @description One lens's measures, a value per row (natural logs). */
        LensMetrics: {
            kl: number[];
            ce: number[];
            entropy: number[];
            top1_agree: number[];
        };
        /** @description One lens row: a captured state's top 5 at every position. */
        LensRow: {
            /** @description Its place in the list of rows. */
            layer_index: number;
            layer_name: string;
            /** @description `[position][rank]`, 5 per position, most probable first. */
            predictions: components["schemas"]["Prediction"][][];
        };
        /**
         * @description Which states the lens rows show.
         * @enum {string}
         */
        LensType: "block_output" | "post_attention" | "combined";
        /** @description One layer's lens vector of the token, read through the logit lens. */
        LensVectorLayer: {
            layer: number;
            /** @description The lens row it belongs to ("Layer ℓ"). */
            layer_name: string;
            /**
             * Format: double
             * @description ‖v‖: how strongly the layer's state must point along it to move
             *     the token's logit.
             */
            norm: number;
            /**
             * @description The top tokens of the model's own head on the vector (final norm,
             *     unembedding, soft-cap): what the direction says.
             */
            top: components["schemas"]["Prediction"][];
        };
        /** @description The body of `POST /lens_vector`. */
        LensVectorQuery: {
            /** @description A string that is exactly one token (encoded without BOS), or an id. */
            token: components["schemas"]["TrackToken"];
            /** @description How many tokens to list per layer (1 to 50, default 10). */
            k?: number;
        };
        /** @description The body `POST /lens_vector` answers with. */
        LensVectorResponse: {
            /** Format: int32 */
            token_id: number;
            /** @description The token as `decode([token_id])` gives it. */
            token: string;
            /** @description One per layer the lens covers, ascending. */
            layers: components["schemas"]["LensVectorLayer"][];
        };
        LoadLensRequest: {
            /**
             * @description A lens on this machine: a tuned-lens folder (config.json and
             *     params.pt or params.safetensors, as the tuned-lens package saves
             *     them), or a Jacobian-lens file (`.pt` as TransformerLens or the
             *     reference implementation saves it, a fit checkpoint, or logitlens's
             *     `.safetensors`).
             */
            path: string;
        };
        LoadModelRequest: {
            /**
             * @description A Hub repo id (org/name[@revision]), a local folder, a .gguf path or a
             *     .gguf file name in the models folder. Default: the SmolLM2 GGUF.
             */
            model_name?: string;
            backend?: components["schemas"]["Backend"];
            weights?: null | components["schemas"]["WeightsMode"];
        };
        /** @description The body of POST /load_model. */
        LoadModelResponse: components["schemas"]["ModelDescription"] & {
            status: components["schemas"]["LoadOutcome"];
            loaded: boolean;
            backend: components["schemas"]["Backend"];
        };
        /**
         * @description Whether /load_model loaded the model or found it in service.
         * @enum {string}
         */
        LoadOutcome: "loaded" | "already_loaded";
        /** @description The body of `POST /load_sae`: the SAEs to attach, all or none. */
        LoadSaeQuery: {
            saes: components["schemas"]["SaeSource"][];
        };
        /**
         * @description Where a load is.
         * @enum {string}
         */
        LoadStage: "resolving" | "downloading" | "loading_tensors" | "ready";
        /** @description The load in progress, as /model_status and /events report it. */
        LoadingStatus: {
            model_name: string;
            backend: components["schemas"]["Backend"];
            stage: components["schemas"]["LoadStage"];
            file?: string | null;
            /** Format: int64 */
            bytes?: number | null;
            /** Format: int64 */
            total_bytes?: number | null;
            tensors_done?: number | null;
            tensors_total?: number | null;
            /**
             * Format: double
             * @description 0..1 when known.
             */
            progress?: number | null;
        };
        /** @description The metric as a sweep resolved it: its token ids and their text. */
        MetricAnswer: {
            /** Format: int32 */
            correct: number;
            /** Format: int32 */
            wrong: number;
            correct_text: string;
            wrong_text: string;
            /** @enum {string} */
            type: "logit_diff";
        } | {
            /** Format: int32 */
            token: number;
            token_text: string;
            /** @enum {string} */
            type: "prob";
        };
        /**
         * @description What is read from the last position's logits. A token is a string that
         *     encodes (without BOS) to exactly one token, or an id.
         */
        MetricQuery: {
            correct: components["schemas"]["TrackToken"];
            wrong: components["schemas"]["TrackToken"];
            /** @enum {string} */
            type: "logit_diff";
        } | {
            token: components["schemas"]["TrackToken"];
            /** @enum {string} */
            type: "prob";
        };
        /** @description A loaded model, as /model_status and /load_model describe it. */
        ModelDescription: {
            model_name: string;
            /**
             * @description The original's class names for the custom backend ("LlamaModel",
             *     "Qwen3Model"); "HookedTransformer" for the hooked one.
             */
            model_class: string;
            /** @description llama, qwen3, gpt2, gpt_neox... */
            family: string;
            /** @description A one-line description of the resolved configuration. */
            config: string;
            num_layers: number;
            hidden_size: number;
            num_heads: number;
            vocab_size: number;
            /** @description The forward pass's precision: f32 or f64. */
            compute_dtype: string;
            /** @description How the weights are held (widened or as stored) and their size. */
            weights: components["schemas"]["WeightsInfo"];
            /** @description The folder of the tuned lens attached (POST /load_lens), if any. */
            tuned_lens?: string | null;
            /**
             * @description Why the attached lens may be for another model (its recorded
             *     unembed_hash differs from this model's).
             */
            tuned_lens_warning?: string | null;
            jacobian_lens?: null | components["schemas"]["AttachedJacobianLens"];
            /**
             * @description The sparse autoencoders attached (POST /load_sae), in the order
             *     attached.
             */
            saes?: components["schemas"]["AttachedSae"][];
            source: components["schemas"]["ModelSource"];
            has_chat_template: boolean;
            /** @description The web app turns the chat template on for instruct models. */
            instruct: boolean;
        };
        ModelEntry: {
            /** @description What to send as `model_name`. */
            id: string;
            name: string;
            family: string;
            /** @description Parameter count as published ("135M", "1B"), when known. */
            size?: string | null;
            /**
             * Format: int64
             * @description The same as a number of parameters.
             */
            params?: number | null;
            /**
             * Format: int64
             * @description Bytes of weights on disk, for local files.
             */
            bytes?: number | null;
            /**
             * Format: int64
             * @description About how much memory its weights take once loaded with `weights:
             *     auto` (widened to f32 when that is under 40% of the memory
             *     available, else as stored: bf16 as published, or the file's blocks).
             */
            memory_bytes?: number | null;
            /** @description Whether that fits in the memory available now. */
            fits?: boolean | null;
            /** @description Present locally (Hub cache or models folder): loads without a download. */
            cached: boolean;
            /** @description "curated", "hub_cache" or "models_dir". */
            source: string;
            /** @description Backends that can run it. */
            backends: string[];
            instruct: boolean;
        };
        /** @description Where a model's weights came from. */
        ModelSource: {
            /** @description dir, gguf or hub. */
            kind: string;
            /** @description The folder, file, or repo id. */
            location: string;
            /** @description The Hub revision asked for, and the snapshot commit it resolved to. */
            revision?: string | null;
            commit?: string | null;
            /** @description How the weights are stored ("F32", "BF16", "Q4_1, F32"...). */
            stored_dtype: string;
        };
        /**
         * @description The body of GET /model_status, and of every /events message: the model
         *     in service (`loaded: true`) or only the service status.
         */
        ModelStatus: components["schemas"]["ServingStatus"] | components["schemas"]["ServiceStatus"];
        /**
         * @description The compact form: `data` is base64 (standard, padded) of little-endian
         *     IEEE float16 laid out `[layers.len()][heads][tokens][tokens]`, query-major.
         */
        Packed: {
            layers: number[];
            /** @description 1 when averaged over heads. */
            heads: number;
            tokens: number;
            reduce: components["schemas"]["Reduce"];
            data: string;
        };
        /** @description The body of `POST /patch`. */
        PatchQuery: {
            /** @description The prompt whose activations are patched in. */
            clean_text: string;
            /** @description The prompt that is run with them; it must tokenize to as many tokens. */
            corrupted_text: string;
            /**
             * @description resid_pre, resid_mid, attn_out, mlp_out or resid_post (or
             *     `blocks.{l}.hook_resid_pre`, the layer left open).
             */
            hook: string;
            metric: components["schemas"]["MetricQuery"];
            positions?: null | components["schemas"]["PositionsQuery"];
            apply_chat_template?: boolean;
        };
        /** @description The body `POST /patch` answers with. */
        PatchResponse: {
            /** @description Each token of the clean text as `decode([id])` gives it. */
            tokens_clean: string[];
            tokens_corrupted: string[];
            layers: number;
            /** @description The hook's short name. */
            hook: string;
            /** @description The positions patched, resolved (non-negative), in request order. */
            positions: number[];
            metric: components["schemas"]["MetricAnswer"];
            /**
             * Format: double
             * @description The metric of the clean run.
             */
            clean: number;
            /**
             * Format: double
             * @description The metric of the corrupted run.
             */
            corrupted: number;
            /**
             * @description `[layer][j]`: the metric of the corrupted run with the hook's
             *     activation at that layer and `positions[j]` replaced by the clean
             *     run's.
             */
            values: number[][];
            /**
             * @description (values − corrupted) / (clean − corrupted); null where clean =
             *     corrupted.
             */
            normalized: (number | null)[][];
            /**
             * Format: double
             * @description Wall-clock time of the sweep.
             */
            seconds: number;
        };
        /** @description Which positions a sweep patches. */
        PositionsQuery: string | number[];
        /** @description One of the top 5 of a cell. */
        Prediction: {
            /** @description The token as `decode([id])` gives it. */
            token: string;
            /** Format: double */
            prob: number;
            /** Format: int32 */
            id: number;
        };
        /**
         * @description What one intervention operation did, as applied: every request key that
         *     reached the model leaves at least one (an operation that could not apply
         *     is refused before anything runs).
         */
        Receipt: {
            /** @description The request key it came from (`layer_1_output`, `blocks.0.hook_mlp_out`...). */
            key: string;
            /**
             * @description The hook it applied at (`blocks.1.hook_resid_post`,
             *     `blocks.0.attn.hook_attn_scores` for blocking).
             */
            hook: string;
            /** @description None for the embeddings. */
            layer?: number | null;
            /** @description Token positions touched (query positions for blocking). */
            positions: number[];
            /** @description Elements changed (for blocking: score entries set to -inf, all heads). */
            elements: number;
            /**
             * Format: double
             * @description L2 norm of the change of the stream (for blocking: of that layer's
             *     attention pattern, all heads).
             */
            delta_norm?: number | null;
        };
        /** @enum {string} */
        Reduce: "none" | "head_mean";
        /** @description The attention of a kept run: the nested numbers or the compact form. */
        RunAttention: {
            /** Format: int64 */
            run_id: number;
            layers: number[];
            heads: number;
            tokens: number;
            /** @description none or head_mean. */
            reduce: components["schemas"]["Reduce"];
            /** @description `[layer][head][query][key]`. */
            attention: number[][][][];
        } | (components["schemas"]["Packed"] & {
            /** Format: int64 */
            run_id: number;
        });
        /** @description A `run` message of /events: the progress of the run of a request. */
        RunProgress: {
            /**
             * @description The request's `x-logitlens-request` header, when it sent one, so a
             *     page shows only its own run.
             */
            request?: string | null;
            stage: components["schemas"]["RunStage"];
            done: number;
            total: number;
        };
        /**
         * @description What a run is doing, for progress displays.
         * @enum {string}
         */
        RunStage: "queued" | "forward" | "lens" | "documents" | "sampling" | "patching" | "generating" | "fitting";
        /** @description The body of `POST /sae_feature_corpus`. */
        SaeCorpusQuery: {
            /** @description An attached SAE's name. */
            sae: string;
            /** Format: int32 */
            feature: number;
            /** @description The corpus: one document per line (blank lines skipped). */
            corpus?: string | null;
            /** @description Instead of `corpus`: this many documents sampled from the model. */
            sample?: number | null;
            /**
             * Format: int64
             * @description Seed of a sampled corpus (default 0).
             */
            seed?: number;
            /** @description Each document's first ids (default 128). */
            max_tokens?: number;
            /** @description Contexts listed, strongest first (1 to 100, default 10). */
            contexts?: number;
            /** @description Tokens shown each side of the one it fires on (0 to 64, default 8). */
            window?: number;
        };
        /** @description What `POST /sae_feature_corpus` answers. */
        SaeCorpusReport: {
            sae: string;
            /** Format: int32 */
            feature: number;
            documents: number;
            /** @description Positions read. */
            tokens: number;
            /** @description Positions where it fires (activation > 0)... */
            fires: number;
            /**
             * Format: double
             * @description ...as a share of `tokens`.
             */
            frequency: number;
            /** Format: float */
            max_act: number;
            /**
             * Format: int64
             * @description The seed, when the documents were sampled from the model.
             */
            sample_seed?: number | null;
            contexts: components["schemas"]["FeatureContext"][];
        };
        /** @description What `POST /eval_sae` and `logitlens eval-sae --json` answer. */
        SaeEvalReport: {
            model_name: string;
            documents: number;
            /** @description Positions counted (special tokens left out). */
            tokens: number;
            /**
             * Format: int64
             * @description The seed, when the documents were sampled from the model.
             */
            sample_seed?: number | null;
            max_tokens: number;
            exclude_special: boolean;
            saes: components["schemas"]["SaeQuality"][];
        };
        /** @description One feature at one position. */
        SaeFeature: {
            /** Format: int32 */
            id: number;
            /** Format: float */
            act: number;
        };
        /** @description The body of `POST /sae_features`. */
        SaeFeaturesQuery: {
            /** @description An attached SAE's name. */
            sae: string;
            features: number[];
            /** @description Tokens listed at each end (1 to 1000, default 10). */
            k?: number;
            /**
             * Format: int64
             * @description A kept run (`run_id` of an /inference answer): each feature's
             *     activation at every position of it is answered too, read after the
             *     run's interventions at the SAE's hook.
             */
            run_id?: number | null;
        };
        /** @description What features say: each one's top and bottom tokens by `W_dec[f]·W_U`. */
        SaeFeaturesResponse: {
            model_name: string;
            sae: components["schemas"]["SaeInfo"];
            features: components["schemas"]["FeatureTokens"][];
            /**
             * @description With a `run_id`: each feature's activation at every position of
             *     that run, in the order of `features`.
             */
            activations?: number[][] | null;
        };
        /** @description An SAE, by what a reader needs to place its features. */
        SaeInfo: {
            name: string;
            /** @description The hook it reads (TransformerLens's name). */
            hook: string;
            /** @description standard, jumprelu or topk. */
            architecture: string;
            d_sae: number;
        };
        /**
         * @description One position's features: the strongest (all active ones with
         *     `sae_top_k: 0`), by activation.
         */
        SaePosition: {
            features: components["schemas"]["SaeFeature"][];
            /** @description How many features are active (all of them, listed or not). */
            l0: number;
            /**
             * Format: float
             * @description ‖x − x̂‖: how far the reconstruction is from the activation.
             */
            recon_error: number;
        };
        /** @description One SAE's measures over the corpus (natural logs). */
        SaeQuality: {
            name: string;
            hook: string;
            architecture: string;
            d_sae: number;
            /**
             * Format: double
             * @description Mean next-token cross-entropy of the clean model.
             */
            ce_clean: number;
            /**
             * Format: double
             * @description ... with the SAE's reconstruction spliced in at its hook.
             */
            ce_spliced: number;
            /**
             * Format: double
             * @description `ce_spliced − ce_clean`: what the splice costs.
             */
            delta_ce: number;
            /**
             * Format: double
             * @description ... with the hook's activation zeroed.
             */
            ce_zero_ablated: number;
            /**
             * Format: double
             * @description `(ce_zero_ablated − ce_spliced) / (ce_zero_ablated − ce_clean)`: the
             *     share of the loss the SAE recovers (1 = as clean); none when zeroing
             *     the hook costs nothing.
             */
            ce_loss_score?: number | null;
            /**
             * Format: double
             * @description Mean KL(clean ‖ spliced) of the output distributions.
             */
            kl: number;
            /**
             * Format: double
             * @description Mean KL(clean ‖ zero-ablated).
             */
            kl_zero_ablated: number;
            /**
             * Format: double
             * @description `1 − Σ‖x − x̂‖² / Σ‖x − x̄‖²` over every counted position, x̄ the
             *     mean activation at the hook.
             */
            explained_variance: number;
            /**
             * Format: double
             * @description Mean `‖x − x̂‖² / d_in`.
             */
            mse: number;
            /**
             * Format: double
             * @description Mean active features per position.
             */
            mean_l0: number;
            /** @description Features active at no counted position. */
            dead_features: number;
            alive_features: number;
        };
        /** @description What one SAE reads over a run's positions. */
        SaeReadout: {
            name: string;
            /** @description The hook it reads (TransformerLens's name). */
            hook: string;
            /** @description standard, jumprelu or topk. */
            architecture: string;
            d_sae: number;
            /**
             * @description The lens row showing the state the hook reads, for placing the
             *     features in a grid: the block output a resid_pre, resid_post or
             *     mlp_out hook reads or ends in; the post-attention row of a
             *     resid_mid or attn_out hook when the lens type shows one, else its
             *     block's output; Embeddings for the embedding hooks.
             */
            row: string;
            positions: components["schemas"]["SaePosition"][];
        };
        /** @description Which SAEs a run reads: `true` for all attached, or their names. */
        SaeSelection: boolean | string[];
        /**
         * @description One SAE to attach: a folder on this machine and what to set over its
         *     own settings.
         */
        SaeSource: {
            /**
             * @description A SAELens folder (cfg.json and sae_weights.safetensors) or a Gemma
             *     Scope folder (params.npz), on this machine or as
             *     `org/name[@revision]:folder` in the Hub cache.
             */
            path: string;
            /** @description Its name (default: the folder's). */
            name?: string | null;
            /**
             * @description The hook it reads, over what its files say (a Gemma Scope folder
             *     outside the release's layout says nothing).
             */
            hook?: string | null;
            /**
             * @description Trained on TransformerLens's centred writing weights (its input is
             *     each position's activation minus its mean).
             */
            center_writing_weights?: boolean | null;
            /**
             * Format: double
             * @description expected_average_only_in's factor, when the folder has none.
             */
            norm_scaling_factor?: number | null;
        };
        SaveStateRequest: {
            name?: string | null;
            /**
             * Format: int64
             * @description The run to save, from /inference's `x-logitlens-run-id` header.
             *     Without it, the server's last run or last loaded session is saved.
             */
            run_id?: number | null;
        };
        /** @description The body of POST /save_state. */
        SaveStateResponse: {
            /** @description Always "saved". */
            status: string;
            session_id: string;
            /** @description `saved_states/<session_id>`. */
            path: string;
        };
        /** @description The body of both PNG endpoints. */
        SavedFile: {
            /** @description Always "success". */
            status: string;
            /** @description `attention_visualizations/<YYYYMMDD_HHMMSS>_<title>.png`. */
            filepath: string;
        };
        /** @description The lens rows of the run, as its answer gave them. */
        SavedResults: {
            text?: string;
            logit_lens?: components["schemas"]["LensRow"][];
        };
        /** @description Where the model's weights came from, and their hash at save time. */
        SavedSource: {
            /** @description dir, gguf or hub. */
            kind: string;
            location: string;
            revision?: string | null;
            commit?: string | null;
            stored_dtype?: string;
            /** @description SHA-256 over the weight files, in order. */
            weights_sha256?: string | null;
        };
        /**
         * @description Whether a model is in service, loading, or neither.
         * @enum {string}
         */
        ServiceState: "idle" | "loading" | "ready";
        /** @description What every /model_status body says, a model in service or not. */
        ServiceStatus: {
            loaded: boolean;
            /** @description The backend of the model in service (or the default when none is). */
            backend: components["schemas"]["Backend"];
            status: components["schemas"]["ServiceState"];
            loading?: null | components["schemas"]["LoadingStatus"];
            /** @description Why the last load failed (the previous model stays in service). */
            last_error?: string | null;
        };
        /** @description A model in service, described, with the service status. */
        ServingStatus: components["schemas"]["ModelDescription"] & components["schemas"]["ServiceStatus"];
        /** @description What a saved session's config.json holds. */
        SessionConfig: Record<string, unknown> & {
            text: string;
            /**
             * @description The request's operations by key, as written: a list per key (the
             *     original's older web app wrote a single operation), each read as
             *     /inference reads it when the session is run again.
             */
            interventions?: Record<string, unknown>;
            lens_type?: components["schemas"]["LensType"];
            model_name?: string | null;
            backend?: components["schemas"]["Backend"];
            apply_chat_template?: boolean;
            results?: null | components["schemas"]["SavedResults"];
            /**
             * Format: int32
             * @description The layout's version (1 when absent: written before versions).
             *     After the original's fields, which keep their order.
             */
            version?: number;
            return_attention?: boolean;
            /** @description The token ids the run saw (the states in tensors.npz are theirs). */
            input_ids?: number[] | null;
            input_tokens?: string[] | null;
            model_source?: null | components["schemas"]["SavedSource"];
            /** @description f32 or f64. */
            compute_dtype?: string | null;
            lens?: null | components["schemas"]["Lens"];
            /** @description The tuned lens's folder, when a tuned lens drew them. */
            tuned_lens?: string | null;
            /** @description A generation's: the tokens it wrote after the prompt's. */
            generated_ids?: number[] | null;
            prompt_tokens?: number | null;
            app?: null | components["schemas"]["AppInfo"];
        };
        SessionEntry: {
            id: string;
            name: string;
            timestamp: string;
        };
        SessionRequest: {
            session_id: string;
        };
        /** @description A vocabulary token and its value. */
        TokenValue: {
            /** Format: int32 */
            id: number;
            token: string;
            /** Format: float */
            value: number;
        };
        TokenizeRequest: {
            text: string;
            /** @description Wrap the text in the model's chat template first (as /inference does). */
            apply_chat_template?: boolean;
            /**
             * @description Add the tokenizer's special tokens (BOS), as /inference does (default
             *     true); false encodes a token as the metric and tracking fields do.
             */
            add_special_tokens?: boolean;
        };
        TokenizeResponse: {
            ids: number[];
            /** @description Each token as `decode([id])` gives it. */
            tokens: string[];
        };
        /** @description A tracked token: a string that is exactly one token, or a token id. */
        TrackToken: string | number;
        /** @description One tracked token in one cell. */
        TrackedCell: {
            /** Format: int32 */
            id: number;
            token: string;
            /** Format: double */
            prob: number;
            /**
             * Format: int32
             * @description 0 = the top token.
             */
            rank: number;
        };
        /** @description The body of `POST /unload_sae`: the attached SAEs to take off. */
        UnloadSaeQuery: {
            names: string[];
        };
        VisualizationRequest: {
            /** @description `[query][key]` */
            attention_data: number[][];
            tokens: string[];
            title: string;
        };
        /** @description How a loaded model's weights are held, for status displays. */
        WeightsInfo: {
            /** @description "f32" or "f64" (widened), or "stored". */
            form: string;
            /** @description How the big matrices are held: "F32", "BF16", "Q4K, Q6K"... */
            kinds: string;
            /**
             * Format: int64
             * @description Bytes the weights take in memory.
             */
            resident_bytes: number;
        };
        /**
         * @description How a model's weights are held once loaded.
         *
         *     `F32` widens every weight to the compute dtype (f32; f64 for tiny models
         *     under `ComputeDtype::Auto`), as logitlens always did: the small models'
         *     tolerances are measured that way. `Stored` keeps the big matrices as the
         *     checkpoint stores them (bf16, f16, GGUF's quantized blocks) and widens a
         *     slice at a time while multiplying, with activations and sums in f32: an
         *     8B model in bf16 takes its 16 GB, not 32. `Auto` widens when the wide
         *     copy takes under 40% of the memory available, and keeps them stored
         *     otherwise.
         * @enum {string}
         */
        WeightsMode: "auto" | "f32" | "stored";
        /** @description What a generation wrote, beside the /inference fields. */
        Written: {
            /** @description The tokens written (the eos it stopped at included). */
            generated_ids: number[];
            generated_text: string;
            /** @description The prompt's token count: positions from here on were written. */
            prompt_tokens: number;
            stopped_at_eos: boolean;
            baseline_generation?: null | components["schemas"]["BaselineAnswer"];
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    delete_session: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SessionRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DeleteSessionResponse"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    diff_sessions: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["DiffSessionsRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DiffSessionsResponse"];
                };
            };
            /** @description The sessions cannot be compared (why) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Unknown session */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    last_eval: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The last evaluation with the model in service; null when none has been run */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": null | components["schemas"]["EvalReport"];
                };
            };
        };
    };
    eval_lens: {
        parameters: {
            query?: never;
            header?: {
                /** @description Names the request in its `run` progress events on /events */
                "x-logitlens-request"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EvalLensRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EvalReport"];
                };
            };
            /** @description No model, an empty corpus, too many documents or a request over the memory budget, with what to change */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description model is loading */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Too many runs waiting; retry after the Retry-After header's seconds */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    last_sae_eval: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The last SAE evaluation with the model in service; null when none has been run */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": null | components["schemas"]["SaeEvalReport"];
                };
            };
        };
    };
    eval_sae: {
        parameters: {
            query?: never;
            header?: {
                /** @description Names the request in its `run` progress events on /events */
                "x-logitlens-request"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EvalSaeQuery"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SaeEvalReport"];
                };
            };
            /** @description No SAE attached or an unknown name, an empty corpus, too many documents or a request over the memory budget, with what to change */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description model is loading */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Too many runs waiting; retry after the Retry-After header's seconds */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    events: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description text/event-stream: `status` events whose data is a ModelStatus, `run` events whose data is a RunProgress */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    kept_fit: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The sums a fit with resume: true continues; null when there are none */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": null | components["schemas"]["FitCheckpoint"];
                };
            };
        };
    };
    fit_jlens: {
        parameters: {
            query?: never;
            header?: {
                /** @description Names the request in its `run` progress events on /events */
                "x-logitlens-request"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["FitJlensQuery"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["FitJlensResponse"];
                };
            };
            /** @description No model, no prompt to fit, settings that cannot fit, nothing to resume, or a fit over the server's limits; each with what to change */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description model is loading */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Too many runs waiting; retry after the Retry-After header's seconds */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    generate: {
        parameters: {
            query?: never;
            header?: {
                /** @description Names the request in its `run` progress events on /events */
                "x-logitlens-request"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["GenerateQuery"];
            };
        };
        responses: {
            /** @description The whole body; with stream: true, application/x-ndjson lines of GenerateEvent */
            200: {
                headers: {
                    /** @description The run over prompt and written tokens, for /save_state's run_id */
                    "x-logitlens-run-id"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["GenerateResponse"];
                };
            };
            /** @description A bad request, with what to fix: max_new_tokens, an intervention position past what will be written, a prompt and continuation over the token limit or the memory budget */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description model is loading */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Too many runs waiting; retry after the Retry-After header's seconds */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    inference: {
        parameters: {
            query?: never;
            header?: {
                /** @description Names the request in its `run` progress events on /events */
                "x-logitlens-request"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["InferenceRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    /** @description Layers taken over from an earlier run */
                    "x-logitlens-reused-layers"?: number;
                    /** @description The run, for /save_state's run_id and /runs/{run_id}/attention */
                    "x-logitlens-run-id"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["InferenceResponse"];
                };
            };
            /** @description A bad request, with what to fix (a prompt over the token limit or the memory budget included) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description model is loading */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Too many runs waiting; retry after the Retry-After header's seconds */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    inference_batch: {
        parameters: {
            query?: never;
            header?: {
                /** @description Names the request in its `run` progress events on /events */
                "x-logitlens-request"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["InferenceBatchRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    /** @description Each prompt's run, comma-separated in request order, for /save_state's run_id */
                    "x-logitlens-run-ids"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["InferenceBatchResponse"];
                };
            };
            /** @description A bad request, with what to fix, naming the prompt (a prompt over the token limit, or the prompts together over the memory budget, included) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description model is loading */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Too many runs waiting; retry after the Retry-After header's seconds */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    lens_vector: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LensVectorQuery"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LensVectorResponse"];
                };
            };
            /** @description No Jacobian lens attached, or a token that is not one token */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description No model is in service */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    load_lens: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LoadLensRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ModelDescription"];
                };
            };
            /** @description The lens cannot be read or does not fit the model */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description No model is in service */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    load_model: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LoadModelRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LoadModelResponse"];
                };
            };
            /** @description Unknown backend or unsupported model */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description No such model */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description The model does not fit in the memory available; the model in service stays */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    load_sae: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LoadSaeQuery"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ModelDescription"];
                };
            };
            /** @description An SAE cannot be read, or does not fit the model; nothing was attached */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description A folder does not exist */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description No model is in service */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    load_session: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SessionRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionConfig"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    model_status: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ModelStatus"];
                };
            };
        };
    };
    list_models: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ModelEntry"][];
                };
            };
        };
    };
    patch: {
        parameters: {
            query?: never;
            header?: {
                /** @description Names the request in its `run` progress events on /events */
                "x-logitlens-request"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["PatchQuery"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PatchResponse"];
                };
            };
            /** @description No model; texts of different token counts; a hook, metric token or position that does not apply; a sweep over the server's limits; each with what to change */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description model is loading */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Too many runs waiting; retry after the Retry-After header's seconds */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    run_attention: {
        parameters: {
            query?: {
                /** @description Comma-separated layer indices (default: every layer). */
                layers?: string;
                /** @description json (default) or f16. */
                format?: components["schemas"]["Format"];
                /** @description none (default) or head_mean. */
                reduce?: components["schemas"]["Reduce"];
            };
            header?: never;
            path: {
                /** @description from /inference's x-logitlens-run-id header */
                run_id: number;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RunAttention"];
                };
            };
            /** @description Bad layers, format or reduce */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Unknown or no longer kept run */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    sae_feature_corpus: {
        parameters: {
            query?: never;
            header?: {
                /** @description Names the request in its `run` progress events on /events */
                "x-logitlens-request"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SaeCorpusQuery"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SaeCorpusReport"];
                };
            };
            /** @description An unknown SAE or feature, an empty corpus, too many documents or a request over the memory budget, with what to change */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description model is loading */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Too many runs waiting; retry after the Retry-After header's seconds */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    sae_features: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SaeFeaturesQuery"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SaeFeaturesResponse"];
                };
            };
            /** @description An unknown SAE, a feature out of its range, or k out of 1..=1000 */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description The run is no longer kept */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description No model is in service */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    save_grid_visualization: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["GridVisualizationRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SavedFile"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    save_state: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SaveStateRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SaveStateResponse"];
                };
            };
            /** @description No state to save */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description The run is no longer kept */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    save_visualization: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["VisualizationRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SavedFile"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    sessions: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionEntry"][];
                };
            };
        };
    };
    tokenize: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TokenizeRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TokenizeResponse"];
                };
            };
            /** @description No model, a text over the server's limit, or a template the model lacks */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description model is loading */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    unload_sae: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["UnloadSaeQuery"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ModelDescription"];
                };
            };
            /** @description A name is not an attached SAE's; nothing was taken off */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description No model is in service */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
}
