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
    "/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Server-Sent Events: the /model_status body now, then at every change. */
        get: operations["events"];
        put?: never;
        post?: never;
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
    "/load_model": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["load_model"];
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
        GridVisualizationRequest: {
            /** @description `[panel][query][key]` */
            grid_data: number[][][];
            tokens: string[];
            title: string;
            /** @description "layer_grid" titles panels "Layer i"; anything else "Head i". */
            grid_type: string;
        };
        IndexMap: {
            [key: string]: {
                type: string;
                /** Format: double */
                value?: number | null;
                vector?: number[] | null;
                /** Format: int64 */
                token_index?: number | null;
                source_tokens?: number[] | null;
                target_tokens?: number[] | null;
                all_layers?: boolean | null;
            }[];
        };
        /** @description The body of `POST /inference`. */
        InferenceRequest: {
            text: string;
            interventions?: components["schemas"]["IndexMap"];
            /** @description Kept as a string so an unknown value is a clear 400, not a 422. */
            lens_type?: string;
            apply_chat_template?: boolean;
            return_attention?: boolean;
            /** @description "json" (default: the nested `attention` field) or "f16" (`attention_f16`). */
            attention_format?: string | null;
            /** @description Only these layers' attention (default: every layer). */
            attention_layers?: number[] | null;
            /** @description "none" (default) or "head_mean". */
            attention_reduce?: string | null;
            /** @description Also run without interventions: `baseline_logit_lens` and `diff`. */
            compare?: boolean;
            /**
             * @description Tokens (single-token strings, or ids) whose probability and rank
             *     every cell reports in `tracked`.
             */
            track_tokens?: unknown[] | null;
            /** @description Each cell's entropy (nats) in `entropy`. */
            entropy?: boolean;
            /** @description Norms and cosines of the captured states in `analysis`. */
            analysis?: boolean;
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
        };
        /**
         * @description One intervention as the original's `InterventionConfig`. Every field is
         *     written back out (nulls included) when a session is saved.
         */
        InterventionConfig: {
            type: string;
            /** Format: double */
            value?: number | null;
            vector?: number[] | null;
            /** Format: int64 */
            token_index?: number | null;
            source_tokens?: number[] | null;
            target_tokens?: number[] | null;
            all_layers?: boolean | null;
        };
        LensRow: {
            layer_index: number;
            layer_name: string;
            /** @description `[position][rank]`, 5 per position, most probable first. */
            predictions: components["schemas"]["Prediction"][][];
        };
        LoadModelRequest: {
            /**
             * @description A Hub repo id (org/name[@revision]), a local folder, a .gguf path or a
             *     .gguf file name in the models folder. Default: the SmolLM2 GGUF.
             */
            model_name?: string;
            backend?: string;
        };
        /** @description The load in progress, as /model_status and /events report it. */
        LoadingStatus: {
            model_name: string;
            backend: string;
            /** @description resolving | downloading | loading_tensors | ready */
            stage: string;
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
            /** @description Present locally (Hub cache or models folder): loads without a download. */
            cached: boolean;
            /** @description "curated", "hub_cache" or "models_dir". */
            source: string;
            /** @description Backends that can run it. */
            backends: string[];
            instruct: boolean;
        };
        /**
         * @description The compact form: `data` is base64 (standard, padded) of little-endian
         *     IEEE float16 laid out `[layers.len()][heads][tokens][tokens]`, query-major.
         */
        Packed: {
            layers: number[];
            /** @description 1 when averaged over heads. */
            heads: number;
            tokens: number;
            /** @description "none" or "head_mean". */
            reduce: string;
            data: string;
        };
        Prediction: {
            token: string;
            /** Format: double */
            prob: number;
            /** Format: int32 */
            id: number;
        };
        /**
         * @description What one intervention operation did, as applied: every request key
         *     that reached the model leaves at least one (an operation that could not
         *     apply is a 400 before anything runs).
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
        SaveStateRequest: {
            name?: string | null;
            /**
             * Format: int64
             * @description The run to save, from /inference's `x-logitlens-run-id` header.
             *     Without it, the server's last run or loaded session (as the original).
             */
            run_id?: number | null;
        };
        SessionEntry: {
            id: string;
            name: string;
            timestamp: string;
        };
        SessionRequest: {
            session_id: string;
        };
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
        VisualizationRequest: {
            /** @description `[query][key]` */
            attention_data: number[][];
            tokens: string[];
            title: string;
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
            /** @description {status, session_id} */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
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
            /** @description {a, b, input_tokens, layer_names, a_logit_lens, b_logit_lens, diff[row][position]} */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
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
    events: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description text/event-stream of /model_status bodies */
            200: {
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
            header?: never;
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
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["InferenceResponse"];
                };
            };
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
            /** @description loaded or already_loaded */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
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
            /** @description the session's config */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
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
            /** @description The loaded model and any load in progress */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
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
    run_attention: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description from /inference's x-logitlens-run-id header */
                run_id: number;
                /** @description Comma-separated layer indices (default: every layer). */
                layers: string | null;
                /** @description json (default) or f16. */
                format: string | null;
                /** @description none (default) or head_mean. */
                reduce: string | null;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description {run_id, layers, heads, tokens, reduce, data (f16) | attention (json)} */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
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
            /** @description {status, filepath} */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
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
            /** @description {status, session_id, path} */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description No state to save */
            400: {
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
            /** @description {status, filepath} */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
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
}
