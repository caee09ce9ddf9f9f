import { Webhook } from "svix";
import { describe, expect, it } from "vitest";
import { signatureHeaders, signWebhook } from "../../src/local/svix-stand-in/index.js";

describe("Standard Webhooks signatures", () => {
  it("reproduce the Standard Webhooks test vector", () => {
    const signature = signWebhook(
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      "msg_p5jXN8AQM9LWM0D4loKWxJek",
      1614265330,
      '{"test": 2432232314}',
    );
    expect(signature).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("verify with the svix SDK, under both the webhook-* and the svix-* header names", () => {
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const body = '{"type":"job.completed","data":{"job_id":"job_1"}}';
    const headers = signatureHeaders([secret], "msg_1", Math.floor(Date.now() / 1000), body);
    const webhook = new Webhook(secret);
    const standard = Object.fromEntries(
      Object.entries(headers).filter(([name]) => name.startsWith("webhook-")),
    );
    const legacy = Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith("svix-")));
    expect(() => webhook.verify(body, standard)).not.toThrow();
    expect(() => webhook.verify(body, legacy)).not.toThrow();
    expect(() => webhook.verify(`${body} `, standard)).toThrow();
  });

  it("carry one signature per live secret, each verifiable on its own", () => {
    const oldSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const newSecret = `whsec_${Buffer.alloc(24, 7).toString("base64")}`;
    const body = "{}";
    const headers = signatureHeaders([newSecret, oldSecret], "msg_2", Math.floor(Date.now() / 1000), body);
    expect(headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(() => new Webhook(oldSecret).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(newSecret).verify(body, headers)).not.toThrow();
  });
});
