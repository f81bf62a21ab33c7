/* test_xl_gemini: Gemini's generateContent format and Google's Code Assist envelope
 * (workers/xl_gemini*.c, xl_code_assist.c) through the representation and back:
 * requests and answers, the ids made for function calls, refusals and malformed input
 * named by their path (the streams: test_xl_gemini_stream). */
#include <errno.h>

#include "xl_gemini_util.h"

/* ---- requests ---- */

static const char req1[] =
    "{\"systemInstruction\":{\"role\":\"system\",\"parts\":[{\"text\":\"Answer in French.\"},"
    "{\"text\":\"Be brief.\"}]},"
    "\"contents\":["
    "{\"role\":\"user\",\"parts\":[{\"text\":\"What is this and the weather?\"},"
    "{\"inline_data\":{\"mime_type\":\"image/jpeg\",\"data\":\"/9j/4AAQ\"}},"
    "{\"fileData\":{\"mimeType\":\"image/png\",\"fileUri\":"
    "\"https://generativelanguage.googleapis.com/v1beta/files/abc\"}}]},"
    "{\"role\":\"model\",\"parts\":[{\"text\":\"Let me think.\",\"thought\":true,"
    "\"thoughtSignature\":\"c2lnLXRob3VnaHQ=\"},"
    "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}},"
    "\"thoughtSignature\":\"sig-gemini-1\"},"
    "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Lyon\"}}},"
    "{\"functionCall\":{\"name\":\"get_time\",\"args\":{}}}]},"
    "{\"role\":\"function\",\"parts\":["
    "{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"output\":\"21C\"}}},"
    "{\"functionResponse\":{\"name\":\"get_time\",\"response\":{\"hour\":9}}},"
    "{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"error\":\"no station\"}}}]},"
    "{\"role\":\"model\",\"parts\":[{\"text\":\"Il fait 21C.\",\"thoughtSignature\":\"c2ln\"}]},"
    "{\"role\":\"user\",\"parts\":[{\"text\":\"Merci\"}]}],"
    "\"tools\":[{\"functionDeclarations\":["
    "{\"name\":\"get_weather\",\"description\":\"Weather\",\"parameters\":{\"type\":\"OBJECT\","
    "\"properties\":{\"city\":{\"type\":\"STRING\",\"description\":\"City\"},\"days\":"
    "{\"type\":\"INTEGER\",\"nullable\":true,\"minimum\":1}},\"required\":[\"city\"],"
    "\"propertyOrdering\":[\"city\",\"days\"]}},"
    "{\"name\":\"get_time\",\"description\":\"Time\"},"
    "{\"name\":\"search\",\"parametersJsonSchema\":{\"$schema\":"
    "\"http://json-schema.org/draft-07/schema#\",\"type\":\"object\",\"properties\":{\"q\":"
    "{\"type\":[\"string\",\"null\"],\"format\":\"uri\"},\"n\":{\"type\":\"integer\","
    "\"exclusiveMinimum\":0}},\"additionalProperties\":false}}]}],"
    "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":"
    "[\"get_weather\"]}},"
    "\"generationConfig\":{\"maxOutputTokens\":100,\"temperature\":0.7,\"topP\":0.9,"
    "\"topK\":40,\"seed\":7,\"stopSequences\":[\"x\",\"y\"],\"candidateCount\":1,"
    "\"responseMimeType\":\"application/json\",\"responseSchema\":{\"type\":\"OBJECT\","
    "\"properties\":{\"a\":{\"type\":\"STRING\"}}},\"thinkingConfig\":{\"thinkingBudget\":1024,"
    "\"includeThoughts\":true},\"responseModalities\":[\"TEXT\"]},"
    "\"safetySettings\":[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":"
    "\"BLOCK_NONE\"}],\"labels\":{\"a\":\"b\"},\"model\":\"models/gemini-2.5-pro\"}";

static const char req1_out[] =
    "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"What is this and the weather?\"},"
    "{\"inlineData\":{\"mimeType\":\"image/jpeg\",\"data\":\"/9j/4AAQ\"}},{\"fileData\":"
    "{\"mimeType\":\"image/png\",\"fileUri\":"
    "\"https://generativelanguage.googleapis.com/v1beta/files/abc\"}}]},{\"role\":\"model\","
    "\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":"
    "\"Paris\"}},\"thoughtSignature\":\"sig-gemini-1\"},{\"functionCall\":{\"name\":"
    "\"get_weather\",\"args\":{\"city\":\"Lyon\"}}},{\"functionCall\":{\"name\":\"get_time\","
    "\"args\":{}}}]},{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":"
    "\"get_weather\",\"response\":{\"result\":\"21C\"}}},{\"functionResponse\":{\"name\":"
    "\"get_time\",\"response\":{\"hour\":9}}},{\"functionResponse\":{\"name\":\"get_weather\","
    "\"response\":{\"error\":\"no station\"}}}]},{\"role\":\"model\",\"parts\":[{\"text\":"
    "\"Il fait 21C.\",\"thoughtSignature\":\"c2ln\"}]},{\"role\":\"user\",\"parts\":[{\"text\":"
    "\"Merci\"}]}],\"systemInstruction\":{\"parts\":[{\"text\":\"Answer in French.\"},"
    "{\"text\":\"Be brief.\"}]},\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\","
    "\"description\":\"Weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":"
    "{\"type\":\"string\",\"description\":\"City\"},\"days\":{\"type\":\"integer\",\"nullable\":"
    "true,\"minimum\":1}},\"required\":[\"city\"],\"propertyOrdering\":[\"city\",\"days\"]}},"
    "{\"name\":\"get_time\",\"description\":\"Time\"},{\"name\":\"search\",\"parameters\":"
    "{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\",\"nullable\":true},\"n\":"
    "{\"type\":\"integer\"}}}}]}],\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\","
    "\"allowedFunctionNames\":[\"get_weather\"]}},\"generationConfig\":{\"maxOutputTokens\":100,"
    "\"temperature\":0.7,\"topP\":0.9,\"topK\":40,\"seed\":7,\"stopSequences\":[\"x\",\"y\"],"
    "\"responseMimeType\":\"application/json\",\"responseSchema\":{\"type\":\"object\","
    "\"properties\":{\"a\":{\"type\":\"string\"}}},\"thinkingConfig\":{\"thinkingBudget\":1024,"
    "\"includeThoughts\":true}}}";

static void test_xl_gemini_request_round_trip(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_GEMINI, ROTA_XL_GEMINI);
    struct rota_xl_req r;
    assert_int_equal(read_req(&c, req1, &r), 0);
    /* what was read */
    assert_int_equal(r.nsystem, 2);
    assert_val(r.system[1].text, "\"Be brief.\"");
    assert_int_equal(r.nmsg, 5);
    assert_int_equal(r.msg[2].role, ROTA_XL_USER); /* "function" */
    assert_int_equal(r.msg[1].role, ROTA_XL_ASSISTANT);
    const struct rota_xl_part *m1 = r.msg[1].part, *m2 = r.msg[2].part;
    assert_int_equal(r.msg[0].part[1].type, ROTA_XL_IMAGE);
    assert_val(r.msg[0].part[1].mime, "\"image/jpeg\"");
    assert_val(r.msg[0].part[2].url, "\"https://generativelanguage.googleapis.com/v1beta/files/abc\"");
    assert_int_equal(m1[0].type, ROTA_XL_THINKING);
    assert_val(m1[0].sig, "\"c2lnLXRob3VnaHQ=\"");
    assert_true(r.has_images);
    /* the ids an answer would have made: name, args, place in the turn, signature */
    for (uint32_t i = 1; i < 4; i++) {
        struct rota_xl_val id = rota_xl_tool_id(&c.x, "call_", m1[i].name, m1[i].args, i - 1,
                                                m1[i].sig);
        assert_true(id.len > 0);
        assert_int_equal(m1[i].id.len, id.len);
        assert_memory_equal(m1[i].id.p, id.p, id.len);
    }
    assert_val(rota_xl_id_sig(&c.x, m1[1].id), "\"sig-gemini-1\"");
    /* the n-th response of a name answers the n-th call of that name */
    assert_memory_equal(m2[0].id.p, m1[1].id.p, m1[1].id.len);
    assert_memory_equal(m2[1].id.p, m1[3].id.p, m1[3].id.len);
    assert_memory_equal(m2[2].id.p, m1[2].id.p, m1[2].id.len);
    assert_val(m2[0].result, "\"21C\"");
    assert_val(m2[1].result, "{\"hour\":9}");
    assert_true(m2[2].is_error);
    assert_val(m2[2].result, "\"no station\"");
    assert_int_equal(m2[2].at_msg, 2);
    assert_int_equal(m2[2].at_part, 2);
    assert_int_equal(r.ntool, 3);
    assert_val(r.tool[0].params,
               "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\","
               "\"description\":\"City\"},\"days\":{\"type\":[\"integer\",\"null\"],\"minimum\":"
               "1}},\"required\":[\"city\"],\"propertyOrdering\":[\"city\",\"days\"]}");
    assert_int_equal(r.choice, ROTA_XL_NAMED);
    assert_val(r.choice_name, "\"get_weather\"");
    assert_val(r.max_tokens, "100");
    assert_val(r.top_k, "40");
    assert_val(r.stop, "[\"x\",\"y\"]");
    assert_int_equal(r.rformat, ROTA_XL_RF_SCHEMA);
    assert_int_equal(r.thinking, 1);
    assert_int_equal(r.thinking_budget, 1024);
    assert_true(r.include_thoughts);
    assert_int_equal(r.model.len, 0); /* the URL's */
    /* written back */
    assert_int_equal(write_req(&c, &r), 0);
    assert_out(&c, req1_out);
    assert_string_equal(c.x.dropped, "$schema,format,exclusiveMinimum,additionalProperties");
    /* and read again, written the same */
    char *once = strndup(c.out.p, c.out.len);
    struct rota_xl_req r2;
    assert_int_equal(read_req(&c, once, &r2), 0);
    assert_int_equal(write_req(&c, &r2), 0);
    assert_out(&c, once);
    free(once);
    teardown(&c);
}

static void test_xl_gemini_code_assist_request(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_CODE_ASSIST, ROTA_XL_CODE_ASSIST);
    c.x.where = rota_xl_code_assist.where;
    c.x.model = "gemini-2.5-flash";
    struct rota_xl_req r;
    assert_int_equal(read_req(&c, "{\"model\":\"gemini-2.5-pro\",\"project\":\"proj-1\","
                                  "\"user_prompt_id\":\"u1\",\"request\":{\"contents\":"
                                  "[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                                  "\"session_id\":\"s1\",\"generationConfig\":{"
                                  "\"thinkingConfig\":{\"thinkingLevel\":\"HIGH\"}}}}",
                              &r),
                     0);
    assert_val(r.model, "\"gemini-2.5-pro\"");
    assert_val(r.project, "\"proj-1\"");
    assert_val(r.effort, "\"high\"");
    assert_int_equal(write_req(&c, &r), 0);
    assert_out(&c, "{\"model\":\"gemini-2.5-flash\",\"project\":\"proj-1\",\"request\":"
                   "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                   "\"generationConfig\":{\"thinkingConfig\":{\"thinkingBudget\":24576}}}}");
    /* without a project: none written */
    assert_int_equal(read_req(&c, "{\"model\":\"m\",\"request\":{\"contents\":[]}}", &r), 0);
    assert_int_equal(write_req(&c, &r), 0);
    assert_out(&c, "{\"model\":\"gemini-2.5-flash\",\"request\":{\"contents\":[]}}");
    /* paths inside name the envelope */
    assert_int_equal(read_req(&c, "{\"model\":\"m\",\"request\":{\"contents\":[{\"parts\":"
                                  "[{\"executableCode\":{}}]}]}}",
                              &r),
                     -ENOTSUP);
    assert_string_equal(c.x.err, "request.contents[0].parts[0].executableCode cannot be sent "
                                 "to code-assist");
    char at[64];
    rota_xl_code_assist.where(at, sizeof(at), 3, 1);
    assert_string_equal(at, "request.contents[3].parts[1]");
    rota_xl_gemini.where(at, sizeof(at), 0xffff, 2);
    assert_string_equal(at, "systemInstruction.parts[2]");
    teardown(&c);
}


static void test_xl_gemini_request_refused(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"{\"contents\":[],\"tools\":[{\"googleSearch\":{}}]}", -ENOTSUP,
         "tools[0].googleSearch cannot be sent to openai"},
        {"{\"contents\":[],\"tools\":[{\"functionDeclarations\":[],\"codeExecution\":{}}]}",
         -ENOTSUP, "tools[0].codeExecution cannot be sent to openai"},
        {"{\"contents\":[],\"cachedContent\":\"cachedContents/x\"}", -ENOTSUP,
         "cachedContent cannot be sent to openai"},
        {"{\"contents\":[],\"generationConfig\":{\"candidateCount\":2}}", -ENOTSUP,
         "generationConfig.candidateCount above 1 cannot be sent to openai"},
        {"{\"contents\":[],\"generationConfig\":{\"frequencyPenalty\":0.5}}", -ENOTSUP,
         "generationConfig.frequencyPenalty cannot be sent to openai"},
        {"{\"contents\":[],\"generationConfig\":{\"responseMimeType\":\"text/x.enum\"}}",
         -ENOTSUP, "generationConfig.responseMimeType \"text/x.enum\" cannot be sent to openai"},
        {"{\"contents\":[],\"generationConfig\":{\"responseModalities\":[\"IMAGE\"]}}",
         -ENOTSUP, "generationConfig.responseModalities \"IMAGE\" cannot be sent to openai"},
        {"{\"contents\":[],\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\","
         "\"allowedFunctionNames\":[\"a\",\"b\"]}}}",
         -ENOTSUP,
         "toolConfig.functionCallingConfig.allowedFunctionNames cannot be sent to openai"},
        {"{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":\"application/pdf\","
         "\"data\":\"JVBE\"}}]}]}",
         -ENOTSUP,
         "contents[0].parts[0].inlineData of type application/pdf cannot be sent to openai"},
        {"{\"contents\":[{\"parts\":[{\"text\":\"a\"},{\"videoMetadata\":{}}]}]}", -ENOTSUP,
         "contents[0].parts[1].videoMetadata cannot be sent to openai"},
        {"{\"contents\":[{\"role\":\"model\",\"parts\":[{\"inlineData\":{\"mimeType\":"
         "\"image/png\",\"data\":\"iVBO\"}}]}]}",
         -ENOTSUP, "contents[0].parts[0].inlineData in a model turn cannot be sent to openai"},
        {"{\"contents\":[],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\",\"response\":"
         "{}}]}]}",
         -ENOTSUP, "tools[0].functionDeclarations[0].response cannot be sent to openai"},
        {"{\"contents\":[],\"newField\":1}", -ENOTSUP, "newField cannot be sent to openai"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctx c;
        setup(&c, ROTA_XL_GEMINI, ROTA_XL_OPENAI);
        struct rota_xl_req r;
        int rc = read_req(&c, cases[i].body, &r);
        if (rc != cases[i].rc || strcmp(c.x.err, cases[i].err) != 0)
            fail_msg("case %zu: %d \"%s\", not %d \"%s\"", i, rc, c.x.err, cases[i].rc,
                     cases[i].err);
        teardown(&c);
    }
}

static void test_xl_gemini_request_malformed(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"{\"contents\":[", -EINVAL, "the request is not JSON"},
        {"[]", -EINVAL, "the request is not a JSON object"},
        {"{}", -EINVAL, "contents is missing"},
        {"{\"contents\":[{\"role\":\"user\",\"parts\":{}}]}", -EINVAL,
         "contents[0].parts is not an array"},
        {"{\"contents\":[{\"role\":\"bot\",\"parts\":[]}]}", -EINVAL,
         "contents[0].role is not \"user\" or \"model\""},
        {"{\"contents\":[{\"parts\":[]},{\"role\":\"model\",\"parts\":[{\"functionCall\":"
         "{\"args\":{}}}]}]}",
         -EINVAL, "contents[1].parts[0].functionCall has no name"},
        {"{\"contents\":[{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\","
         "\"args\":[1]}}]}]}",
         -EINVAL, "contents[0].parts[0].functionCall.args is not an object"},
        {"{\"contents\":[{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\"}}]},"
         "{\"parts\":[{\"functionResponse\":{\"name\":\"g\",\"response\":{}}}]}]}",
         -EINVAL,
         "contents[1].parts[0].functionResponse answers no functionCall named \"g\" in the "
         "model turn before it"},
        {"{\"contents\":[{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\"}}]},"
         "{\"parts\":[{\"functionResponse\":{\"name\":\"f\"}},{\"functionResponse\":{\"name\":"
         "\"f\"}}]}]}",
         -EINVAL,
         "contents[1].parts[1].functionResponse answers no functionCall named \"f\" in the "
         "model turn before it"},
        {"{\"contents\":[{\"parts\":[{\"text\":\"a\",\"functionCall\":{\"name\":\"f\"}}]}]}",
         -EINVAL, "contents[0].parts[0] holds more than one kind of data"},
        {"{\"contents\":[{\"parts\":[{\"text\":1}]}]}", -EINVAL,
         "contents[0].parts[0].text is not a string"},
        {"{\"contents\":[],\"generationConfig\":{\"temperature\":\"hot\"}}", -EINVAL,
         "generationConfig.temperature is not a number"},
        {"{\"contents\":[],\"generationConfig\":{\"thinkingConfig\":{\"thinkingBudget\":-5}}}",
         -EINVAL, "generationConfig.thinkingConfig.thinkingBudget is not -1, 0 or a number of "
                  "tokens"},
        {"{\"contents\":[],\"systemInstruction\":{\"parts\":[{\"text\":null}]}}", -EINVAL,
         "systemInstruction.parts[0] has no text"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctx c;
        setup(&c, ROTA_XL_GEMINI, ROTA_XL_OPENAI);
        struct rota_xl_req r;
        int rc = read_req(&c, cases[i].body, &r);
        if (rc != cases[i].rc || strncmp(c.x.err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("case %zu: %d \"%s\", not %d \"%s\"", i, rc, c.x.err, cases[i].rc,
                     cases[i].err);
        teardown(&c);
    }
}

/* ---- requests from another format's representation ---- */

static void openai_where(char *buf, size_t n, unsigned msg, unsigned part)
{
    snprintf(buf, n, "messages[%u].content[%u]", msg, part);
}


static void test_xl_gemini_request_from_others(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_OPENAI, ROTA_XL_GEMINI);
    c.x.where = openai_where;
    struct rota_xl_part sys[] = {{.type = ROTA_XL_TEXT, .text = V("\"Be brief.\"")}};
    struct rota_xl_part u0[] = {
        {.type = ROTA_XL_TEXT, .text = V("\"Look\"")},
        {.type = ROTA_XL_IMAGE, .url = V("\"data:image/png;base64,iVBORw0K\"")}};
    struct rota_xl_part a1[] = {
        {.type = ROTA_XL_THINKING, .text = V("\"hmm\""), .sig = V("\"EqQBsig\"")},
        {.type = ROTA_XL_THINKING, .text = V("\"unsigned\"")},
        {.type = ROTA_XL_REDACTED_THINKING, .text = V("\"opaque\"")},
        {.type = ROTA_XL_TEXT, .text = V("\"\"")},
        {.type = ROTA_XL_TOOL_CALL, .id = V("\"call_0123456789abcdef01234567__ts_c2lnLWdlbWluaS0x\""),
         .name = V("\"get_weather\""), .args = V("{\"city\":\"Paris\"}")}};
    struct rota_xl_part u2[] = {{.type = ROTA_XL_TOOL_RESULT,
                                 .id = V("\"call_0123456789abcdef01234567__ts_c2lnLWdlbWluaS0x\""),
                                 .result = V("\"{\\\"temp\\\":21}\"")}};
    struct rota_xl_part u3[] = {{.type = ROTA_XL_TEXT, .text = V("\"and now?\"")}};
    struct rota_xl_msg msg[] = {{ROTA_XL_USER, u0, 2}, {ROTA_XL_ASSISTANT, a1, 5},
                                {ROTA_XL_USER, u2, 1}, {ROTA_XL_USER, u3, 1}};
    struct rota_xl_tool tools[] = {
        {.name = V("\"get_weather\""),
         .params = V("{\"type\":\"object\",\"properties\":{\"days\":{\"type\":[\"integer\","
                     "\"string\",\"null\"],\"const\":3}},\"$defs\":{}}")},
        {.name = V("\"now\""), .params = V("{\"type\":\"object\",\"properties\":{}}")}};
    struct rota_xl_req r = {.system = sys, .nsystem = 1, .msg = msg, .nmsg = 4, .tool = tools,
                            .ntool = 2, .choice = ROTA_XL_AUTO, .parallel_tools = -1,
                            .max_tokens = V("64"), .stop = V("\"END\""),
                            .rformat = ROTA_XL_RF_JSON, .thinking = -1,
                            .effort = V("\"medium\""), .user = V("\"u1\"")};
    assert_int_equal(write_req(&c, &r), 0);
    assert_out(&c,
               "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Look\"},{\"inlineData\":"
               "{\"mimeType\":\"image/png\",\"data\":\"iVBORw0K\"}}]},{\"role\":\"model\","
               "\"parts\":["
               "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}},"
               "\"thoughtSignature\":\"sig-gemini-1\"}]},{\"role\":\"user\",\"parts\":["
               "{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"result\":"
               "\"{\\\"temp\\\":21}\"}}},{\"text\":\"and now?\"}]}],\"systemInstruction\":"
               "{\"parts\":[{\"text\":\"Be brief.\"}]},\"tools\":[{\"functionDeclarations\":["
               "{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\",\"properties\":"
               "{\"days\":{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}],"
               "\"nullable\":true}}}},{\"name\":\"now\"}]}],\"toolConfig\":{"
               "\"functionCallingConfig\":{\"mode\":\"AUTO\"}},\"generationConfig\":{"
               "\"maxOutputTokens\":64,\"stopSequences\":[\"END\"],\"responseMimeType\":"
               "\"application/json\",\"thinkingConfig\":{\"thinkingBudget\":8192}}}");
    assert_string_equal(c.x.dropped, "const,$defs");
    /* an object result is the response; a named choice is ANY with its name */
    u2[0].result = V("{\"temp\":21}");
    r.choice = ROTA_XL_NAMED;
    r.choice_name = V("\"now\"");
    r.rformat = ROTA_XL_RF_TEXT;
    r.effort = (struct rota_xl_val){0};
    r.thinking = 0;
    assert_int_equal(write_req(&c, &r), 0);
    assert_non_null(memmem(c.out.p, c.out.len, "\"response\":{\"temp\":21}", 22));
    assert_non_null(memmem(c.out.p, c.out.len,
                           "{\"mode\":\"ANY\",\"allowedFunctionNames\":[\"now\"]}", 45));
    assert_non_null(memmem(c.out.p, c.out.len, "\"thinkingConfig\":{\"thinkingBudget\":0}", 37));
    /* refused: an image URL, named in the client's numbering */
    u0[1].url = V("\"https://example.com/cat.png\"");
    u0[1].at_msg = 0, u0[1].at_part = 1;
    assert_int_equal(write_req(&c, &r), -ENOTSUP);
    assert_string_equal(c.x.err, "messages[0].content[1]: image URLs cannot be sent to gemini");
    u0[1].url = V("\"data:image/png;base64,iVBORw0K\"");
    /* a result whose call is nowhere has no name */
    u2[0].id = V("\"call_nowhere\"");
    u2[0].name = (struct rota_xl_val){0}; /* (the write before gave it one) */
    u2[0].at_msg = 2;
    assert_int_equal(write_req(&c, &r), -EINVAL);
    assert_string_equal(c.x.err, "messages[2].content[0]: a tool result answers no tool call "
                                 "earlier in the conversation");
    assert_int_equal(rota_xl_gemini.req_out(&c.x, &r, &c.out), -ENOTSUP);
    assert_string_equal(c.x.err, "messages[2].content[0]: a tool result without its "
                                 "function's name cannot be sent to gemini");
    u2[0].id = a1[4].id;
    /* parallel calls turned off; an effort Gemini has no budget for */
    r.parallel_tools = 0;
    assert_int_equal(write_req(&c, &r), -ENOTSUP);
    assert_string_equal(c.x.err, "parallel tool calls turned off cannot be sent to gemini");
    r.parallel_tools = -1;
    r.thinking = 1;
    r.effort = V("\"xhigh\"");
    assert_int_equal(write_req(&c, &r), -ENOTSUP);
    assert_string_equal(c.x.err, "reasoning effort \"xhigh\" cannot be sent to gemini");
    teardown(&c);
}

/* ---- answers ---- */

static const char ans1[] =
    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Let me think.\","
    "\"thought\":true},{\"text\":\"Checking.\"},{\"functionCall\":{\"name\":\"get_weather\","
    "\"args\":{\"city\":\"Paris\",\"days\":2}},\"thoughtSignature\":\"sig-gemini-1\"},"
    "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Lyon\"}}}]},"
    "\"finishReason\":\"STOP\",\"index\":0,\"safetyRatings\":[]}],\"usageMetadata\":{"
    "\"promptTokenCount\":50,\"candidatesTokenCount\":10,\"thoughtsTokenCount\":5,"
    "\"cachedContentTokenCount\":20,\"totalTokenCount\":65},\"modelVersion\":"
    "\"gemini-2.5-pro\",\"responseId\":\"resp-1\"}";

static void test_xl_gemini_answer_round_trip(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_OPENAI, ROTA_XL_GEMINI);
    struct rota_xl_resp r = {0};
    assert_int_equal(rota_xl_gemini.resp_in(&c.x, ans1, strlen(ans1), &r), 0);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.part[0].type, ROTA_XL_THINKING);
    assert_int_equal(r.part[2].type, ROTA_XL_TOOL_CALL);
    struct rota_xl_val id = rota_xl_tool_id(&c.x, "call_", r.part[2].name, r.part[2].args, 0,
                                            r.part[2].sig);
    assert_memory_equal(r.part[2].id.p, id.p, id.len);
    assert_val(rota_xl_id_sig(&c.x, r.part[2].id), "\"sig-gemini-1\"");
    id = rota_xl_tool_id(&c.x, "call_", r.part[3].name, r.part[3].args, 1, r.part[3].sig);
    assert_memory_equal(r.part[3].id.p, id.p, id.len);
    assert_int_equal(r.finish, ROTA_XL_FINISH_TOOLS);
    assert_int_equal(r.usage.in, 50);
    assert_int_equal(r.usage.out, 15);
    assert_int_equal(r.usage.cached, 20);
    assert_int_equal(r.usage.reasoning, 5);
    assert_val(r.model, "\"gemini-2.5-pro\"");
    assert_val(r.id, "\"resp-1\"");
    /* written for a Gemini client: the same answer, Gemini's way */
    r.part[2].sig = (struct rota_xl_val){0}; /* from the id, as another format gives it */
    assert_int_equal(rota_xl_gemini.resp_out(&c.x, &r, &c.out), 0);
    const char *want =
        "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":"
        "\"Let me think.\",\"thought\":true},{\"text\":\"Checking.\"},{\"functionCall\":"
        "{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\",\"days\":2}},"
        "\"thoughtSignature\":\"sig-gemini-1\"},{\"functionCall\":{\"name\":\"get_weather\","
        "\"args\":{\"city\":\"Lyon\"}}}]},\"finishReason\":\"STOP\",\"index\":0}],"
        "\"usageMetadata\":{\"promptTokenCount\":50,\"candidatesTokenCount\":10,"
        "\"thoughtsTokenCount\":5,\"cachedContentTokenCount\":20,\"totalTokenCount\":65},"
        "\"modelVersion\":\"gemini-2.5-pro\",\"responseId\":\"resp-1\"}";
    assert_out(&c, want);
    struct rota_xl_resp r2 = {0};
    assert_int_equal(rota_xl_gemini.resp_in(&c.x, c.out.p, c.out.len, &r2), 0);
    assert_int_equal(r2.n, 4);
    assert_memory_equal(r2.part[2].id.p, r.part[2].id.p, r.part[2].id.len);
    assert_int_equal(r2.usage.out, 15);
    /* Code Assist: the same inside {"response": ...} */
    rota_jbuf_reset(&c.out);
    assert_int_equal(rota_xl_code_assist.resp_out(&c.x, &r, &c.out), 0);
    assert_true(c.out.len == strlen(want) + 13);
    assert_memory_equal(c.out.p, "{\"response\":", 12);
    char *wrapped = strndup(c.out.p, c.out.len);
    memset(&r2, 0, sizeof(r2));
    assert_int_equal(rota_xl_code_assist.resp_in(&c.x, wrapped, strlen(wrapped), &r2), 0);
    assert_int_equal(r2.n, 4);
    free(wrapped);
    teardown(&c);
}

static void test_xl_gemini_answer_finish(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        enum rota_xl_finish f;
    } cases[] = {
        {"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"finishReason\":"
         "\"MAX_TOKENS\"}]}", ROTA_XL_FINISH_LENGTH},
        {"{\"candidates\":[{\"finishReason\":\"SAFETY\"}]}", ROTA_XL_FINISH_FILTER},
        {"{\"candidates\":[{\"finishReason\":\"RECITATION\"}]}", ROTA_XL_FINISH_FILTER},
        {"{\"candidates\":[{\"finishReason\":\"MALFORMED_FUNCTION_CALL\"}]}",
         ROTA_XL_FINISH_OTHER},
        {"{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":"
         "{\"promptTokenCount\":3}}", ROTA_XL_FINISH_FILTER},
        {"{\"response\":{\"candidates\":[{\"finishReason\":\"STOP\"}]},\"traceId\":\"t\"}",
         ROTA_XL_FINISH_STOP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctx c;
        setup(&c, ROTA_XL_OPENAI, ROTA_XL_GEMINI);
        struct rota_xl_resp r = {0};
        const struct rota_xl_format *f = i == 5 ? &rota_xl_code_assist : &rota_xl_gemini;
        assert_int_equal(f->resp_in(&c.x, cases[i].body, strlen(cases[i].body), &r), 0);
        assert_int_equal(r.finish, cases[i].f);
        teardown(&c);
    }
    struct ctx c;
    setup(&c, ROTA_XL_OPENAI, ROTA_XL_GEMINI);
    struct rota_xl_resp r = {0};
    const char *img = "{\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{}}]}}]}";
    assert_int_equal(rota_xl_gemini.resp_in(&c.x, img, strlen(img), &r), -ENOTSUP);
    assert_string_equal(c.x.err,
                        "candidates[0].content.parts[0].inlineData cannot be translated");
    assert_int_equal(rota_xl_code_assist.resp_in(&c.x, "{}", 2, &r), -EINVAL);
    assert_string_equal(c.x.err, "the answer has no response object");
    teardown(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xl_gemini_request_round_trip),
        cmocka_unit_test(test_xl_gemini_code_assist_request),
        cmocka_unit_test(test_xl_gemini_request_refused),
        cmocka_unit_test(test_xl_gemini_request_malformed),
        cmocka_unit_test(test_xl_gemini_request_from_others),
        cmocka_unit_test(test_xl_gemini_answer_round_trip),
        cmocka_unit_test(test_xl_gemini_answer_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
